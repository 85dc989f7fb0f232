using Holdfast.Audit;
using Holdfast.Bots;
using Holdfast.Generation;
using Holdfast.Sessions;
using Holdfast.Storage.Sqlite;
using Holdfast.TestHelpers;
using Holdfast.Tests.Generation;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;

namespace Holdfast.Tests.Audit;

/// <summary>
/// A change and its audit event commit together or not at all: a trigger installed in the test database makes every
/// insert into <c>session_events</c> fail, and the change it belongs to must be rolled back with it.
/// </summary>
public sealed class AuditAtomicityTests
{
    private const string FailAuditTrigger = """
        CREATE TRIGGER test_fail_audit BEFORE INSERT ON session_events
        BEGIN SELECT RAISE(ABORT, 'test: audit write refused'); END;
        """;

    [Fact(Timeout = 60_000)]
    public async Task RecordMessageAsync_AuditInsertFails_ChangeRolledBackAndErrorSurfaced()
    {
        using var temp = new TempDirectory();
        using var host = TestHosts.BuildCoreHost(temp.Path);
        await host.StartAsync();
        var manager = host.Services.GetRequiredService<BotManager>();
        var database = host.Services.GetRequiredService<SqliteDatabase>();
        var audit = host.Services.GetRequiredService<IAuditLog>();
        await manager.StartSessionAsync(new StartBotSession("bot1", "bridge"));
        await manager.RecordMessageAsync("bot1", "before");
        var before = await manager.GetAsync("bot1");
        var eventsBefore = (await audit.ReadAuditAsync(SessionKind.Bot, "bot1")).Events;
        await ExecuteAsync(database, FailAuditTrigger);

        var message = await Should.ThrowAsync<StoreUnavailableException>(() => manager.RecordMessageAsync("bot1", "lost with its audit event"));
        var qr = await Should.ThrowAsync<StoreUnavailableException>(() => manager.UpdateQrAsync("bot1", "2@qr"));
        var end = await Should.ThrowAsync<StoreUnavailableException>(() => manager.EndSessionAsync("bot1"));

        message.Message.ShouldContain("test: audit write refused");
        message.Message.ShouldContain("nothing was changed");
        message.InnerException.ShouldBeOfType<SqliteException>();
        qr.Message.ShouldContain("audit write refused");
        end.Message.ShouldContain("audit write refused");
        var after = await manager.GetAsync("bot1");
        after.ShouldBe(before);
        after.Version.ShouldBe(before.Version);
        after.LastMessage.ShouldBe("before");
        (await audit.ReadAuditAsync(SessionKind.Bot, "bot1")).Events.ShouldBe(eventsBefore);

        // Without the failing trigger the same change goes through, with its event.
        await ExecuteAsync(database, "DROP TRIGGER test_fail_audit");
        var recorded = await manager.RecordMessageAsync("bot1", "after");
        recorded.Version.ShouldBe(before.Version + 1);
        (await audit.ReadAuditAsync(SessionKind.Bot, "bot1")).Events.Count.ShouldBe(eventsBefore.Count + 1);
        await host.StopAsync();
    }

    [Fact(Timeout = 60_000)]
    public async Task PauseAsync_AuditInsertFails_SessionUnchangedAndErrorSurfaced()
    {
        await using var host = await GenerationTestHost.StartAsync(startRunner: false);
        var database = host.Services.GetRequiredService<SqliteDatabase>();
        var audit = host.Services.GetRequiredService<IAuditLog>();
        var created = (await host.Sessions.CreateAsync(GenerationTestHost.ScriptedRequest())).Session;
        var eventsBefore = (await audit.ReadAuditAsync(SessionKind.Generation, created.Id)).Events;
        await ExecuteAsync(database, FailAuditTrigger);

        // Translated at the store boundary, like the bot store's: the project's exception, the provider's as its cause.
        var ex = await Should.ThrowAsync<StoreUnavailableException>(() => host.Sessions.PauseAsync(created.Id, GenerationTestHost.Alice));

        ex.Message.ShouldContain("test: audit write refused");
        ex.Message.ShouldContain("nothing was changed");
        ex.InnerException.ShouldBeOfType<SqliteException>();
        var after = await host.Sessions.GetAsync(created.Id, null);
        after.Status.ShouldBe(created.Status);
        after.DesiredState.ShouldBe(created.DesiredState);
        after.Version.ShouldBe(created.Version);
        (await audit.ReadAuditAsync(SessionKind.Generation, created.Id)).Events.ShouldBe(eventsBefore);

        await ExecuteAsync(database, "DROP TRIGGER test_fail_audit");
        var paused = await host.Sessions.PauseAsync(created.Id, GenerationTestHost.Alice);
        paused.Version.ShouldBeGreaterThan(created.Version);
        (await audit.ReadAuditAsync(SessionKind.Generation, created.Id)).Events.Count.ShouldBeGreaterThan(eventsBefore.Count);
    }

    private static Task ExecuteAsync(SqliteDatabase database, string sql) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = sql;
            return await command.ExecuteNonQueryAsync();
        });
}
