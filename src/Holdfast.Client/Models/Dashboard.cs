namespace Holdfast.Client.Models;

/// <summary>
/// A one-time login link to the web dashboard (<c>POST /api/v1/dashboard/login-links</c>): opening <see cref="Url"/>
/// in a browser signs it in as the caller, once, until <see cref="ExpiresAt"/>.
/// </summary>
public sealed record DashboardLoginLink(string Url, DateTimeOffset ExpiresAt);
