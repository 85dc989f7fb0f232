// The peer Holdfast's benchmarks compare against, in the same run: LangGraph.js checkpointers persisting a streamed
// generation the way a LangGraph app would make it durable, one checkpoint per token.
//
//   node peer.mjs sqlite   --file PATH --synchronous FULL|NORMAL [--threads 100] [--tokens 100] [--reads 1000]
//   node peer.mjs postgres --url postgres://… [--threads 100] [--tokens 100] [--reads 1000]
//
// Workload: --threads LangGraph thread_ids stream at once (one async loop each, as a server would run them); each token
// appends to the thread's text and is persisted with one SqliteSaver/PostgresSaver `put` (the whole state: the input
// message and the text so far, as LangGraph stores channel values), so every token is durable before the next.
// Then --reads `getTuple` calls (the latest state with its whole text) on random threads. Prints one JSON object.
import { performance } from "node:perf_hooks";
import { statSync, existsSync } from "node:fs";
import { emptyCheckpoint, uuid6 } from "@langchain/langgraph-checkpoint";

const args = process.argv.slice(2);
const kind = args[0];
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const threads = Number(option("threads", "100"));
const tokensPerThread = Number(option("tokens", "100"));
const reads = Number(option("reads", "1000"));

// Tokens like a model's: a word with its leading space (about 6 characters, as Holdfast's scripted backend's).
const words = ["the", "harbour", "kelp", "forest", "holds", "fast", "against", "tides", "and", "storms", "where",
  "otters", "sleep", "anchored", "to", "long", "green", "fronds", "that", "sway", "in", "cold", "water", "light"];
const token = (thread, i) => " " + words[(thread * 7 + i * 13) % words.length];

let saver;
let close = async () => {};
let synchronous = null;
if (kind === "sqlite") {
  const { SqliteSaver } = await import("@langchain/langgraph-checkpoint-sqlite");
  const file = option("file");
  if (!file) throw new Error("--file is required");
  saver = SqliteSaver.fromConnString(file);
  saver.setup(); // journal_mode=WAL and the tables, as it ships
  const wanted = option("synchronous", null);
  if (wanted) saver.db.pragma(`synchronous=${wanted}`);
  synchronous = ["OFF", "NORMAL", "FULL", "EXTRA"][saver.db.pragma("synchronous", { simple: true })];
  close = async () => saver.db.close();
} else if (kind === "postgres") {
  const { PostgresSaver } = await import("@langchain/langgraph-checkpoint-postgres");
  saver = PostgresSaver.fromConnString(option("url"));
  await saver.setup();
  // The durability class the server gives this session's commits (the harness starts PostgreSQL with it on).
  const { rows } = await saver.pool.query("SHOW synchronous_commit");
  synchronous = `synchronous_commit=${rows[0].synchronous_commit}`;
  close = async () => saver.end();
} else {
  console.error("usage: node peer.mjs sqlite --file PATH --synchronous FULL|NORMAL | postgres --url URL");
  process.exit(2);
}

const input = (thread) => ({ role: "user", content: `Benchmark prompt number ${thread} about harbours and kelp` });
const texts = new Array(threads).fill("");
const configs = [];

async function stream(thread) {
  let config = { configurable: { thread_id: `thread-${thread}-${process.pid}`, checkpoint_ns: "" } };
  for (let i = 0; i < tokensPerThread; i++) {
    texts[thread] += token(thread, i);
    const checkpoint = {
      ...emptyCheckpoint(),
      id: uuid6(i),
      channel_values: { messages: [input(thread)], output: texts[thread] },
      channel_versions: { messages: 1, output: i + 1 },
    };
    config = await saver.put(config, checkpoint, { source: "loop", step: i, parents: {} }, { output: i + 1 });
  }

  configs[thread] = { configurable: { thread_id: config.configurable.thread_id, checkpoint_ns: "" } };
}

const started = performance.now();
await Promise.all(Array.from({ length: threads }, (_, t) => stream(t)));
const elapsedMs = performance.now() - started;
const tokens = threads * tokensPerThread;

// Read the latest state with its whole text, as a client that shows a session would.
const latencies = [];
for (let i = 0; i < reads; i++) {
  const thread = (i * 37) % threads;
  const t0 = performance.now();
  const tuple = await saver.getTuple(configs[thread]);
  latencies.push(performance.now() - t0);
  if (tuple?.checkpoint.channel_values.output !== texts[thread]) throw new Error(`thread ${thread}: getTuple returned another text`);
}
latencies.sort((a, b) => a - b);
const percentile = (p) => latencies[Math.min(latencies.length - 1, Math.max(0, Math.ceil((p / 100) * latencies.length) - 1))];

let bytesOnDisk = null;
if (kind === "sqlite") {
  saver.db.pragma("wal_checkpoint(TRUNCATE)");
  const file = option("file");
  bytesOnDisk = [file, `${file}-wal`].filter(existsSync).reduce((sum, f) => sum + statSync(f).size, 0);
}
await close();

console.log(JSON.stringify({
  peer: kind === "sqlite" ? "LangGraph.js SqliteSaver" : "LangGraph.js PostgresSaver",
  synchronous,
  threads,
  tokens,
  textBytes: texts.reduce((sum, t) => sum + Buffer.byteLength(t), 0),
  elapsedMs,
  tokensPerSecond: tokens / (elapsedMs / 1000),
  getTupleP50Ms: percentile(50),
  getTupleP99Ms: percentile(99),
  bytesOnDisk,
}));
