using Holdfast.Sessions;

namespace Holdfast.Server.Hosting;

/// <summary>The server cannot start; the message says why and what to do.</summary>
public sealed class ServerStartupException(string message, Exception? innerException = null) : HoldfastException(message, innerException);
