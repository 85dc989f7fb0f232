using Holdfast.TestHelpers;
using Npgsql;

namespace Holdfast.Storage.Postgres.Tests;

/// <summary>
/// A node frozen inside a transaction (SIGSTOP, a long GC pause, a partition) must not keep its row locks: the nodes
/// taking its sessions over skip locked rows and would skip them for ever. The server ends such a session after
/// <see cref="PostgresDatabase.IdleInTransactionTimeout"/>, on every connection the pool hands out, not only new ones.
/// </summary>
public sealed class PostgresIdleTransactionTests
{
    [Fact(Timeout = 60_000)]
    public async Task Timeout_HoldsOnEveryConnectionThePoolHandsOut_AfterReuseToo()
    {
        await using var db = await TestPostgres.CreateDatabaseAsync();
        await using var database = new PostgresDatabase(db.ConnectionString);
        var expected = $"{(int)PostgresDatabase.IdleInTransactionTimeout.TotalSeconds}s";

        for (var use = 0; use < 4; use++)
        {
            await using var connection = await database.OpenAsync();
            await using (var set = new NpgsqlCommand("SELECT set_config('application_name', 'use-' || @use, false)", connection))
            {
                set.Parameters.AddWithValue("use", use.ToString(System.Globalization.CultureInfo.InvariantCulture));
                await set.ExecuteScalarAsync();
            }

            await using var show = new NpgsqlCommand("SHOW idle_in_transaction_session_timeout", connection);
            ((string?)await show.ExecuteScalarAsync()).ShouldBe(expected, $"use {use} of the pooled connection");
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task FrozenClientInsideATransaction_ItsRowLockIsReleasedByTheServer()
    {
        await using var db = await TestPostgres.CreateDatabaseAsync();
        await using var database = new PostgresDatabase(db.ConnectionString);
        await using (var warm = await database.OpenAsync())
        {
            await using var create = new NpgsqlCommand("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)", warm);
            await create.ExecuteNonQueryAsync();
        }

        // The "frozen" holder: a reused pooled connection that locks the row and then says nothing more.
        var frozen = await database.OpenAsync();
        var transaction = await frozen.BeginTransactionAsync();
        await using (var lockRow = new NpgsqlCommand("SELECT id FROM t WHERE id = 1 FOR UPDATE", frozen, transaction))
        {
            await lockRow.ExecuteScalarAsync();
        }

        await using var other = new NpgsqlConnection(db.ConnectionString);
        await other.OpenAsync();
        async Task<bool> LockedAsync()
        {
            await using var probe = new NpgsqlCommand("SELECT count(*) FROM (SELECT id FROM t FOR UPDATE SKIP LOCKED) x", other);
            return (long)(await probe.ExecuteScalarAsync())! == 0;
        }

        (await LockedAsync()).ShouldBeTrue("the frozen holder has the row locked");
        await Poll.UntilAsync(async () => !await LockedAsync(), "the server ends the idle transaction and its lock goes", PostgresDatabase.IdleInTransactionTimeout + TimeSpan.FromSeconds(10));
#pragma warning disable CA1849, VSTHRD103
        try
        {
            frozen.Dispose();
        }
        catch (NpgsqlException)
        {
            // The server closed it.
        }
#pragma warning restore CA1849, VSTHRD103
    }
}
