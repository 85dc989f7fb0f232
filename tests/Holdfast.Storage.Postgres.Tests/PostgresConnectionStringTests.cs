using Holdfast.Sessions;

namespace Holdfast.Storage.Postgres.Tests;

public sealed class PostgresConnectionStringTests
{
    [Theory]
    [InlineData("postgres://alice:s3cret@db.example.com:6543/app", "db.example.com", 6543, "alice", "s3cret", "app")]
    [InlineData("postgresql://alice:s3cret@db.example.com/app", "db.example.com", 5432, "alice", "s3cret", "app")]
    [InlineData("postgres://postgres.abcd:p%40ss%3Aw%2Frd@aws-0-eu.pooler.supabase.com:5432/postgres", "aws-0-eu.pooler.supabase.com", 5432, "postgres.abcd", "p@ss:w/rd", "postgres")]
    [InlineData("postgres://bob@[::1]:5433/", "::1", 5433, "bob", null, "bob")]
    [InlineData("Host=127.0.0.1;Port=5444;Username=carol;Password=pw;Database=hf", "127.0.0.1", 5444, "carol", "pw", "hf")]
    public void Parse_UriAndKeywordForms_GiveNpgsqlSettings(string value, string host, int port, string user, string? password, string database)
    {
        var settings = PostgresConnectionString.Parse(value);

        settings.Host.ShouldBe(host);
        settings.Port.ShouldBe(port);
        settings.Username.ShouldBe(user);
        settings.Password.ShouldBe(password);
        settings.Database.ShouldBe(database);
        settings.ApplicationName.ShouldBe("holdfast");
    }

    [Theory]
    [InlineData("postgres://alice:pw@127.0.0.1:5432/app", PostgresDatabase.DefaultMaxAutoPrepare)]
    [InlineData("Host=127.0.0.1;Username=alice;Database=app", PostgresDatabase.DefaultMaxAutoPrepare)]
    [InlineData("Host=127.0.0.1;Username=alice;Database=app;Max Auto Prepare=0", 0)]
    [InlineData("Host=127.0.0.1;Username=alice;Database=app;MaxAutoPrepare=7", 7)]
    public void Database_PreparesStatementsAutomatically_UnlessTheConnectionStringSaysOtherwise(string value, int expected)
    {
        using var database = new PostgresDatabase(value);

        new Npgsql.NpgsqlConnectionStringBuilder(database.DataSource.ConnectionString).MaxAutoPrepare.ShouldBe(expected);
    }

    [Theory]
    [InlineData("postgres://alice:pw@127.0.0.1:5432/app", PostgresDatabase.DefaultMaxPoolSize)]
    [InlineData("Host=127.0.0.1;Username=alice;Database=app;Maximum Pool Size=100", 100)]
    public void Database_SmallPoolByDefault_UnlessTheConnectionStringSaysOtherwise(string value, int expected)
    {
        using var database = new PostgresDatabase(value);

        new Npgsql.NpgsqlConnectionStringBuilder(database.DataSource.ConnectionString).MaxPoolSize.ShouldBe(expected);
    }

    [Fact]
    public void Parse_SslModeQuery_MapsToNpgsql()
    {
        var settings = PostgresConnectionString.Parse("postgres://u:p@h:5432/d?sslmode=require&application_name=node-a");

        settings.SslMode.ShouldBe(Npgsql.SslMode.Require);
        settings.ApplicationName.ShouldBe("node-a");
    }

    [Theory]
    [InlineData("postgres://alice:s3cret@db.example.com:6543/app", "postgres://alice:***@db.example.com:6543/app")]
    [InlineData("postgresql://alice:s3cret@db.example.com/app?sslmode=require", "postgresql://alice:***@db.example.com/app?sslmode=require")]
    [InlineData("postgres://alice@db.example.com/app", "postgres://alice@db.example.com/app")]
    [InlineData("Host=h;Username=u;Password=s3cret;Database=d", "Host=h;Username=u;Password=***;Database=d")]
    public void Redact_HidesThePassword(string value, string expected)
    {
        var redacted = PostgresConnectionString.Redact(value);

        redacted.ShouldBe(expected);
        redacted.ShouldNotContain("s3cret");
    }

    [Theory]
    [InlineData("Host=h;Bogus=s3cret")]
    [InlineData("postgres://u:s3cret@h:5432/d?nonsense=zzz")]
    public void Parse_Invalid_OneLineWithoutThePassword(string value)
    {
        var ex = Should.Throw<StoreConfigurationException>(() => PostgresConnectionString.Parse(value));

        ex.Message.ShouldNotContain("s3cret");
        ex.Message.ShouldNotContain(Environment.NewLine);
    }

    [Theory]
    [InlineData("postgres://u@h/d", true)]
    [InlineData("POSTGRESQL://u@h/d", true)]
    [InlineData("Host=h;Username=u", true)]
    [InlineData("holdfast.db", false)]
    [InlineData("", false)]
    [InlineData(null, false)]
    public void IsPostgres_RecognisesTheForms(string? value, bool expected) =>
        PostgresConnectionString.IsPostgres(value).ShouldBe(expected);
}
