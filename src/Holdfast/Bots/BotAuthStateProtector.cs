using System.Security.Cryptography;
using Holdfast.Sessions;
using Holdfast.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Holdfast.Bots;

/// <summary>
/// Encrypts bot login state at rest with AES-256-GCM. The blob is <c>[1 byte format][12 bytes nonce][16 bytes
/// tag][ciphertext]</c> and is bound to its session id (additional authenticated data), so a blob copied to another
/// session does not decrypt. The key comes from <see cref="BotOptions.AuthStateKey"/>, else from a key file in the
/// data directory (created with mode 0600 on first use). The key and the plaintext are never logged.
/// </summary>
public sealed class BotAuthStateProtector : IDisposable
{
    private const byte FormatVersion = 1;
    private const int KeySize = 32;
    private const int NonceSize = 12;
    private const int TagSize = 16;
    private const int HeaderSize = 1 + NonceSize + TagSize;

    private readonly AesGcm _aes;

    /// <summary>
    /// <see cref="AesGcm"/> instances are not thread-safe (one OpenSSL context each): without this lock, concurrent
    /// calls (the webhook dispatcher decrypts secrets in parallel) failed with a tag mismatch now and then.
    /// </summary>
    private readonly Lock _aesLock = new();

    /// <summary>Uses the given 32-byte key.</summary>
    public BotAuthStateProtector(ReadOnlySpan<byte> key)
    {
        if (key.Length != KeySize)
        {
            throw new ArgumentException($"The bot auth state key must be {KeySize} bytes; it is {key.Length}.", nameof(key));
        }

        _aes = new AesGcm(key, TagSize);
        KeyFingerprint = Convert.ToHexStringLower(HMACSHA256.HashData(key, FingerprintLabel));
    }

    /// <summary>
    /// Identifies the key without revealing it: HMAC-SHA-256 of a fixed label under the key, hex. Stored in the
    /// database by the first start, so every node of a store can check that it uses the same key.
    /// </summary>
    public string KeyFingerprint { get; }

    private static ReadOnlySpan<byte> FingerprintLabel => "holdfast bot auth state key fingerprint v1"u8;

    /// <summary>Resolves the key from options (configured key, else the key file in the data directory).</summary>
    public BotAuthStateProtector(IOptions<BotOptions> botOptions, IOptions<StorageOptions> storageOptions, ILogger<BotAuthStateProtector>? logger = null)
        : this(ResolveKey(botOptions.Value, storageOptions.Value, logger ?? NullLogger<BotAuthStateProtector>.Instance))
    {
    }

    /// <summary>Encrypts <paramref name="plaintext"/> for session <paramref name="sessionId"/>.</summary>
    public byte[] Protect(string sessionId, ReadOnlySpan<byte> plaintext)
    {
        var blob = new byte[HeaderSize + plaintext.Length];
        blob[0] = FormatVersion;
        var nonce = blob.AsSpan(1, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        lock (_aesLock)
        {
            _aes.Encrypt(nonce, plaintext, blob.AsSpan(HeaderSize), blob.AsSpan(1 + NonceSize, TagSize), AssociatedData(sessionId));
        }
        return blob;
    }

    /// <summary>
    /// Decrypts a blob made by <see cref="Protect"/> for the same session. Throws
    /// <see cref="StoreUnavailableException"/> when it was made with another key or for another session, or was altered.
    /// </summary>
    public byte[] Unprotect(string sessionId, ReadOnlySpan<byte> blob)
    {
        if (blob.Length < HeaderSize || blob[0] != FormatVersion)
        {
            throw new StoreUnavailableException($"The stored auth state of bot session '{sessionId}' is not in a format this version can read.");
        }

        var plaintext = new byte[blob.Length - HeaderSize];
        try
        {
            lock (_aesLock)
            {
                _aes.Decrypt(blob.Slice(1, NonceSize), blob[HeaderSize..], blob.Slice(1 + NonceSize, TagSize), plaintext, AssociatedData(sessionId));
            }
        }
        catch (AuthenticationTagMismatchException ex)
        {
            throw new StoreUnavailableException(
                $"The stored auth state of bot session '{sessionId}' could not be decrypted: it was encrypted with another key " +
                $"(check {BotOptions.SectionName}:{nameof(BotOptions.AuthStateKey)} or the key file), or it was altered.",
                ex);
        }

        return plaintext;
    }

    public void Dispose() => _aes.Dispose();

    /// <summary>Creates a new random key, base64-encoded (for <see cref="BotOptions.AuthStateKey"/>).</summary>
    public static string GenerateKey() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(KeySize));

    internal static byte[] ResolveKey(BotOptions options, StorageOptions storage, ILogger logger)
    {
        if (!string.IsNullOrWhiteSpace(options.AuthStateKey))
        {
            if (DescribeKeyProblem(options.AuthStateKey) is { } problem)
            {
                throw new InvalidOperationException(problem);
            }

            return Convert.FromBase64String(options.AuthStateKey.Trim());
        }

        return ReadOrCreateKeyFile(ResolveKeyFilePath(options, storage), logger);
    }

    /// <summary>
    /// Why <paramref name="configuredKey"/> (<see cref="BotOptions.AuthStateKey"/>) cannot be used, in one sentence
    /// naming the setting; null when it is absent or usable (base64 of 32 bytes).
    /// </summary>
    public static string? DescribeKeyProblem(string? configuredKey)
    {
        if (string.IsNullOrWhiteSpace(configuredKey))
        {
            return null;
        }

        var setting = $"{BotOptions.SectionName}:{nameof(BotOptions.AuthStateKey)}";
        byte[] key;
        try
        {
            key = Convert.FromBase64String(configuredKey.Trim());
        }
        catch (FormatException)
        {
            return $"{setting} is not valid base64; it must be base64 of {KeySize} bytes (make one with `openssl rand -base64 {KeySize}`), or remove it to use the key file in the data directory.";
        }

        return key.Length == KeySize
            ? null
            : $"{setting} decodes to {key.Length} bytes; it must be base64 of {KeySize} bytes (make one with `openssl rand -base64 {KeySize}`).";
    }

    /// <summary>The key file used when no key is configured: <see cref="BotOptions.AuthStateKeyFile"/> in the data directory (or that absolute path).</summary>
    internal static string ResolveKeyFilePath(BotOptions options, StorageOptions storage) =>
        Path.IsPathRooted(options.AuthStateKeyFile)
            ? options.AuthStateKeyFile
            : Path.Combine(storage.ResolveDataDirectory(), options.AuthStateKeyFile);

    internal static byte[] ReadOrCreateKeyFile(string path, ILogger logger)
    {
        HoldfastPaths.EnsureDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        if (!File.Exists(path))
        {
            var key = RandomNumberGenerator.GetBytes(KeySize);
            try
            {
                var fileOptions = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
                if (!OperatingSystem.IsWindows())
                {
                    fileOptions.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
                }

                using (var stream = new FileStream(path, fileOptions))
                {
                    stream.Write(key);
                    stream.Flush(flushToDisk: true);
                }

                Log.BotAuthKeyFileCreated(logger, path);
                return key;
            }
            catch (IOException) when (File.Exists(path))
            {
                // Another process created it first; use theirs.
            }
        }

        var bytes = File.ReadAllBytes(path);
        if (bytes.Length != KeySize)
        {
            throw new InvalidOperationException($"The bot auth state key file '{path}' holds {bytes.Length} bytes; it must hold {KeySize}.");
        }

        return bytes;
    }

    private static byte[] AssociatedData(string sessionId) => System.Text.Encoding.UTF8.GetBytes("holdfast-bot-auth:" + sessionId);
}
