using System.Diagnostics;

namespace Holdfast.TestHelpers;

/// <summary>Waits for background state with a deadline instead of a bare delay.</summary>
public static class Poll
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Polls <paramref name="probe"/> until it returns true; throws with <paramref name="what"/> after the deadline.</summary>
    public static async Task UntilAsync(Func<Task<bool>> probe, string what, TimeSpan? timeout = null, TimeSpan? interval = null)
    {
        var deadline = Stopwatch.StartNew();
        var limit = timeout ?? DefaultTimeout;
        while (true)
        {
            if (await probe())
            {
                return;
            }

            if (deadline.Elapsed > limit)
            {
                throw new TimeoutException($"Timed out after {limit.TotalSeconds:0.#}s waiting for: {what}");
            }

            await Task.Delay(interval ?? TimeSpan.FromMilliseconds(20));
        }
    }

    /// <summary>Polls <paramref name="probe"/> until its value satisfies <paramref name="done"/>; returns that value.</summary>
    public static async Task<T> UntilAsync<T>(Func<Task<T>> probe, Func<T, bool> done, string what, TimeSpan? timeout = null)
    {
        T value = default!;
        await UntilAsync(
            async () =>
            {
                value = await probe();
                return done(value);
            },
            what,
            timeout);
        return value;
    }
}
