using System.Text;
using Holdfast.Client.Streaming;

namespace Holdfast.Client.Tests.Streaming;

public sealed class SseParserTests
{
    [Fact]
    public void Parse_EventWithIdTypeAndData_YieldsOneEvent()
    {
        var events = SseParser.Parse("id: 7\nevent: chunk\ndata: {\"seq\":7,\"text\":\"hi\"}\n\n");

        var single = events.ShouldHaveSingleItem();
        single.EventType.ShouldBe("chunk");
        single.Id.ShouldBe("7");
        single.Data.ShouldBe("{\"seq\":7,\"text\":\"hi\"}");
    }

    [Fact]
    public void Parse_MultipleDataLines_JoinedWithNewline()
    {
        var events = SseParser.Parse("data: one\ndata: two\ndata:three\n\n");

        events.ShouldHaveSingleItem().Data.ShouldBe("one\ntwo\nthree");
    }

    [Fact]
    public void Parse_CommentsAndHeartbeats_AreIgnored()
    {
        var events = SseParser.Parse(": heartbeat\n\n: another\ndata: x\n\n");

        events.ShouldHaveSingleItem().Data.ShouldBe("x");
    }

    [Fact]
    public void Parse_CrLfAndCrLineEndings_AreAccepted()
    {
        var events = SseParser.Parse("event: a\r\ndata: 1\r\n\r\nevent: b\rdata: 2\r\r");

        events.Select(e => (e.EventType, e.Data)).ShouldBe([("a", "1"), ("b", "2")]);
    }

    [Fact]
    public void Parse_NoEventField_TypeIsMessage()
    {
        SseParser.Parse("data: x\n\n").ShouldHaveSingleItem().EventType.ShouldBe("message");
    }

    [Fact]
    public void Parse_OnlyFirstSpaceAfterColonIsDropped()
    {
        SseParser.Parse("data:  two spaces\n\n").ShouldHaveSingleItem().Data.ShouldBe(" two spaces");
    }

    [Fact]
    public void Parse_FieldWithoutColon_HasEmptyValue()
    {
        SseParser.Parse("data\n\n").ShouldHaveSingleItem().Data.ShouldBe(string.Empty);
    }

    [Fact]
    public void Parse_IdPersistsAcrossEvents_UntilChanged()
    {
        var events = SseParser.Parse("id: 1\ndata: a\n\ndata: b\n\nid: 3\ndata: c\n\n");

        events.Select(e => e.Id).ShouldBe(["1", "1", "3"]);
    }

    [Fact]
    public void Parse_IdWithNul_IsIgnored()
    {
        SseParser.Parse("id: 1\ndata: a\n\nid: 2\0x\ndata: b\n\n").Select(e => e.Id).ShouldBe(["1", "1"]);
    }

    [Fact]
    public void Parse_EventWithoutData_IsNotDispatched()
    {
        var events = SseParser.Parse("event: status\n\nevent: done\ndata: {}\n\n");

        events.ShouldHaveSingleItem().EventType.ShouldBe("done");
    }

    [Fact]
    public void Parse_UnterminatedEventAtEnd_IsDropped()
    {
        var events = SseParser.Parse("data: complete\n\ndata: cut off mid-ev");

        events.ShouldHaveSingleItem().Data.ShouldBe("complete");
    }

    [Fact]
    public void Parse_UnknownFieldsAndBom_AreIgnored()
    {
        SseParser.Parse("\uFEFFfoo: bar\ndata: x\n\n").ShouldHaveSingleItem().Data.ShouldBe("x");
    }

    [Fact]
    public void Parse_RetryField_IsReportedAndInvalidRetryIgnored()
    {
        var events = SseParser.Parse("retry: 1500\ndata: a\n\nretry: soon\ndata: b\n\n");

        events[0].Retry.ShouldBe(TimeSpan.FromMilliseconds(1500));
        events[1].Retry.ShouldBeNull();
    }

    [Fact(Timeout = 10_000)]
    public async Task ParseAsync_StreamDeliveredInTinyPieces_SameEventsAsWhole()
    {
        const string body = "id: 1\nevent: chunk\ndata: {\"seq\":1,\"text\":\"héllo ✓\"}\n\n: heartbeat\n\nid: 2\r\nevent: done\r\ndata: {\"status\":\"completed\"}\r\n\r\n";
        await using var stream = new TrickleStream(Encoding.UTF8.GetBytes(body), pieceSize: 3);

        var events = new List<SseEvent>();
        await foreach (var e in SseParser.ParseAsync(stream))
        {
            events.Add(e);
        }

        events.ShouldBe(SseParser.Parse(body));
        events.Count.ShouldBe(2);
        events[0].Data.ShouldContain("héllo ✓");
    }

    [Fact]
    public void ToStreamEvent_ChunkStatusDone_MappedToTypedEvents()
    {
        var chunk = HoldfastClient.ToStreamEvent(new SseEvent("chunk", "{\"seq\":4,\"text\":\"ab\"}", "4"), 3);
        var status = HoldfastClient.ToStreamEvent(new SseEvent("status", "{\"seq\":5,\"status\":\"paused\",\"reason\":\"user\"}", "5"), 4);
        var done = HoldfastClient.ToStreamEvent(new SseEvent("done", "{\"status\":\"completed\"}", "5"), 5);
        var unknown = HoldfastClient.ToStreamEvent(new SseEvent("novel", "{}", "6"), 5);
        var garbage = HoldfastClient.ToStreamEvent(new SseEvent("chunk", "not json", "6"), 5);

        chunk.ShouldBe(new GenerationChunkEvent(4, "ab"));
        status.ShouldBe(new GenerationStatusEvent(5, Models.GenerationStatus.Paused, "user", null));
        done.ShouldBe(new GenerationDoneEvent(5, Models.GenerationStatus.Completed));
        unknown.ShouldBeNull();
        garbage.ShouldBeNull();
    }

    /// <summary>A read-only stream that hands out at most a few bytes per read, like a slow network.</summary>
    private sealed class TrickleStream(byte[] data, int pieceSize) : MemoryStream(data)
    {
        public override int Read(byte[] buffer, int offset, int count) => base.Read(buffer, offset, Math.Min(count, pieceSize));

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(buffer.Length, pieceSize)], cancellationToken);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            base.ReadAsync(buffer, offset, Math.Min(count, pieceSize), cancellationToken);
    }
}
