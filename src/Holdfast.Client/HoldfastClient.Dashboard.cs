using Holdfast.Client.Models;

namespace Holdfast.Client;

public sealed partial class HoldfastClient
{
    /// <summary>
    /// Creates a one-time login link to the web dashboard that signs a browser in as this client's caller (over the
    /// Unix socket: the local admin). Completes when the server has the link; it works once, for a few minutes.
    /// </summary>
    /// <param name="cancellationToken">Abandons the request.</param>
    public Task<DashboardLoginLink> CreateDashboardLoginLinkAsync(CancellationToken cancellationToken = default) =>
        SendAsync<DashboardLoginLink>(HttpMethod.Post, "api/v1/dashboard/login-links", cancellationToken: cancellationToken);
}
