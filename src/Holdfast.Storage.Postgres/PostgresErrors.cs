using System.Net.Sockets;
using Holdfast.Sessions;
using Npgsql;

namespace Holdfast.Storage.Postgres;

/// <summary>
/// Npgsql and PostgreSQL errors as Holdfast's own, translated once at the store boundary: what is wrong and what to do,
/// in one sentence that names the server as <c>host:port/database as user</c> (never with its password).
/// </summary>
internal static class PostgresErrors
{
    /// <summary>
    /// An error worth trying again after a short wait: the connection was lost or refused, the server is starting or
    /// shutting down, a serialization failure or deadlock.
    /// </summary>
    public static bool IsTransient(Exception exception) => exception switch
    {
        PostgresException pg => pg.IsTransient || pg.SqlState is PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.DeadlockDetected
            or PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CrashShutdown or PostgresErrorCodes.CannotConnectNow,
        NpgsqlException npgsql => npgsql.IsTransient,
        _ => false,
    };

    /// <summary>Holdfast's exception for <paramref name="exception"/>, or null when it is not a provider error this boundary translates.</summary>
    public static Exception? Translate(Exception exception, string server) => exception switch
    {
        HoldfastException => null,
        PostgresException { SqlState: PostgresErrorCodes.InvalidPassword } pg => new StoreConfigurationException(
            $"PostgreSQL at {server} refused the login: wrong password for that user. Fix the password in the store setting (--store, HOLDFAST_STORE or Storage:ConnectionString).", pg),
        PostgresException { SqlState: PostgresErrorCodes.InvalidAuthorizationSpecification } pg => new StoreConfigurationException(
            $"PostgreSQL at {server} refused the login ({pg.MessageText}). Check the user and password in the store setting.", pg),
        PostgresException { SqlState: PostgresErrorCodes.InvalidCatalogName } pg => new StoreConfigurationException(
            $"PostgreSQL at {server}: the database does not exist ({pg.MessageText}). Create it (e.g. `createdb`), or name an existing database in the store setting.", pg),
        PostgresException { SqlState: PostgresErrorCodes.InsufficientPrivilege } pg => new StoreConfigurationException(
            $"PostgreSQL at {server}: the user lacks a privilege Holdfast needs ({pg.MessageText}). Connect as the database owner (on Supabase: the postgres role of the connection string).", pg),
        PostgresException pg when IsTransient(pg) => new StoreUnavailableException(
            $"PostgreSQL at {server} is not available ({pg.MessageText}); try again when it is back.", pg),
        NpgsqlException npgsql when npgsql.IsTransient || npgsql.InnerException is SocketException or TimeoutException or IOException => new StoreUnavailableException(
            $"Cannot reach PostgreSQL at {server}: {Innermost(npgsql).Message.TrimEnd('.')}. Is the server running, and are the host and port right?", npgsql),
        PostgresException { SqlState: PostgresErrorCodes.UniqueViolation } pg => new SessionConflictException(
            $"The change collided with a concurrent one ({pg.ConstraintName ?? pg.MessageText}); nothing was changed: retry the request."),
        PostgresException pg => new StoreUnavailableException(
            $"PostgreSQL at {server} refused the change ({pg.MessageText}); nothing of it was stored.", pg),
        _ => null,
    };

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is not null)
        {
            e = e.InnerException;
        }

        return e;
    }
}
