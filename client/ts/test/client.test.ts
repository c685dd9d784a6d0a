/**
 * The generated TypeScript client against a live tradewinkd (TW_BINARY = path to the server).
 * Calls Health and Auth.WhoAmI, one method of every tradewink.v1 service, opens
 * StreamOrderUpdates, and checks UNAUTHENTICATED without a token. Methods the server does not
 * implement yet may answer UNIMPLEMENTED, but every call must get a verdict from the server
 * (never a transport failure such as UNAVAILABLE or a deadline on a unary call).
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { create } from "@bufbuild/protobuf";
import { DurationSchema } from "@bufbuild/protobuf/wkt";

import {
  BadRequestSchema,
  Code,
  ConnectError,
  ErrorInfoSchema,
  OrderOrigin,
  OrderSide,
  OrderType,
  RetryInfoSchema,
  TimeInForce,
  errorDetails,
  withRetryInfo,
  HealthCheckResponse_ServingStatus,
  Role,
  TradingMode,
  createTradewinkClients,
  createTradewinkTransport,
  sealBrokerSecret,
  type TradewinkClients,
} from "../src/index.js";

let server: ChildProcess | undefined;
let dir = "";
let baseUrl = "";
let userToken = "";
let adminToken = "";

function startServer(binary: string): Promise<number> {
  dir = mkdtempSync(join(tmpdir(), "twc-ts-"));
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith("TW_") && !/proxy/i.test(k)) env[k] = v;
  }
  env.TW_LISTEN = "127.0.0.1:0";
  env.TW_OPS_LISTEN = "127.0.0.1:0";
  // Bursts of calls; the limits themselves are tested elsewhere.
  env.TW_RATE_AUTH_FAIL = "100000/s:100000";
  env.TW_RATE_PUBLIC = "100000/s:100000";
  env.TW_RATE_API = "100000/s:100000";
  // A sealing key (a fixed test scalar), for sealBrokerSecret against the real server.
  env.TW_VAULT_SEALING_KEYS = "v3:" + Buffer.from("07".repeat(32), "hex").toString("base64");
  const child = spawn(binary, [], { cwd: dir, env, stdio: ["ignore", "ignore", "pipe"] });
  server = child;
  return new Promise((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => reject(new Error("tradewinkd did not start")), 30_000);
    child.once("exit", (code) => reject(new Error(`tradewinkd exited ${code}`)));
    child.stderr?.on("data", (chunk: Buffer) => {
      buf += chunk.toString("utf8");
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const ev = JSON.parse(line) as { event?: string; port?: number };
          if (ev.event === "listening" && typeof ev.port === "number") {
            clearTimeout(timer);
            resolve(ev.port);
          }
        } catch {
          /* not a JSON line */
        }
      }
    });
  });
}

function clients(token?: string): TradewinkClients {
  return createTradewinkClients(createTradewinkTransport({ baseUrl, token, defaultTimeoutMs: 5000 }));
}

/** The call reached the server: it succeeded, or the server answered with a status. */
async function reachesServer(name: string, call: () => Promise<unknown>): Promise<Code | "ok"> {
  try {
    await call();
    return "ok";
  } catch (err) {
    assert.ok(err instanceof ConnectError, `${name}: not a ConnectError: ${String(err)}`);
    const transport = [Code.Unavailable, Code.DeadlineExceeded, Code.Unknown, Code.Internal];
    assert.ok(!transport.includes(err.code), `${name}: transport failure ${Code[err.code]}: ${err.rawMessage}`);
    return err.code;
  }
}

before(async () => {
  const binary = process.env.TW_BINARY;
  assert.ok(binary, "set TW_BINARY to the tradewinkd binary");
  const port = await startServer(binary);
  baseUrl = `http://127.0.0.1:${port}`;
  const anon = clients();
  userToken = (await anon.auth.issueDevToken({ subject: "ts-user", role: Role.USER, ttlSeconds: 600n })).token;
  adminToken = (await anon.auth.issueDevToken({ subject: "ts-admin", role: Role.ADMIN, ttlSeconds: 600n })).token;
});

after(() => {
  server?.removeAllListeners("exit");
  server?.kill("SIGTERM");
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("health reports SERVING", async () => {
  const res = await clients().health.check({ service: "" });
  assert.equal(res.status, HealthCheckResponse_ServingStatus.SERVING);
});

test("WhoAmI with a token returns the subject and role", async () => {
  const who = await clients(userToken).auth.whoAmI({});
  assert.equal(who.subject, "ts-user");
  assert.equal(who.role, Role.USER);
  assert.ok(who.expiresAt && who.expiresAt.seconds > BigInt(Math.floor(Date.now() / 1000)));
});

test("WhoAmI without a token or with a bad one is UNAUTHENTICATED", async () => {
  for (const token of [undefined, "", "not-a-jwt"]) {
    await assert.rejects(clients(token).auth.whoAmI({}), (err: unknown) => {
      assert.ok(err instanceof ConnectError);
      assert.equal(err.code, Code.Unauthenticated);
      return true;
    });
  }
});

test("one method of every tradewink.v1 service reaches the server", async () => {
  const user = clients(userToken);
  const admin = clients(adminToken);
  const calls: Array<[string, () => Promise<unknown>]> = [
    ["KeyVault.ListBrokerKeys", () => user.keyVault.listBrokerKeys({})],
    ["Orders.GetAccountSettings", () => user.orders.getAccountSettings({})],
    ["Risk.GetLimits", () => user.risk.getLimits({})],
    ["Audit.VerifyChain", () => user.audit.verifyChain({})],
    ["Sim.GetClock", () => admin.sim.getClock({})],
  ];
  for (const [name, call] of calls) {
    const verdict = await reachesServer(name, call);
    assert.ok(verdict === "ok" || verdict === Code.Unimplemented, `${name}: ${String(verdict)}`);
  }
  const anon = clients();
  for (const [name, call] of [
    ["KeyVault.ListBrokerKeys", () => anon.keyVault.listBrokerKeys({})],
    ["Orders.GetAccountSettings", () => anon.orders.getAccountSettings({})],
  ] as Array<[string, () => Promise<unknown>]>) {
    const verdict = await reachesServer(name, call);
    assert.ok(verdict === Code.Unauthenticated || verdict === Code.Unimplemented, `${name}: ${String(verdict)}`);
  }
});

test("StreamOrderUpdates opens with a token and is UNAUTHENTICATED without", async () => {
  const tw = clients(userToken);
  let messages = 0;
  try {
    for await (const msg of tw.orders.streamOrderUpdates({}, { timeoutMs: 1500 })) {
      assert.ok(msg.update, "a stream message carries an update");
      messages++;
    }
  } catch (err) {
    assert.ok(err instanceof ConnectError, String(err));
    if (err.code === Code.DeadlineExceeded) {
      // Still open at our deadline = the server accepted the feed; prove the connection
      // really reaches the server (a black hole would also time out).
      assert.equal((await tw.health.check({})).status, HealthCheckResponse_ServingStatus.SERVING);
    } else {
      assert.equal(err.code, Code.Unimplemented, `unexpected ${Code[err.code]}: ${err.rawMessage}`);
    }
  }
  assert.ok(messages >= 0);

  await assert.rejects(
    (async () => {
      for await (const _ of clients().orders.streamOrderUpdates({}, { timeoutMs: 3000 })) {
        /* no message may arrive */
      }
    })(),
    (err: unknown) => err instanceof ConnectError && err.code === Code.Unauthenticated,
  );
});

test("plaintext to a non-loopback address is refused", () => {
  assert.throws(() => createTradewinkTransport({ baseUrl: "http://10.0.0.1:50051" }), /refusing plaintext/);
  assert.throws(() => createTradewinkTransport({ baseUrl: "http://127.0.0.1.evil.com:1" }), /refusing plaintext/);
  assert.doesNotThrow(() => createTradewinkTransport({ baseUrl: "https://tradewink.example:443" }));
});

test("sealBrokerSecret: the server stores a sealed secret, and refuses it for another user", async () => {
  const user = clients(userToken);
  const sk = await user.keyVault.getSealingKey({});
  assert.equal(sk.version, 3);
  assert.equal(sk.publicKey.length, 65);
  const keyId = "PKTSSEALED000001";
  const sealed = await sealBrokerSecret(
    sk.publicKey,
    sk.version,
    { user: "ts-user", broker: "sim", keyId, environment: "paper" },
    "ts-sealed-secret-Q7w2",
  );
  const put = await user.keyVault.putBrokerKey({
    broker: "sim",
    environment: TradingMode.PAPER,
    keyId,
    sealedSecret: sealed.sealedSecret,
    sealingKeyVersion: sealed.sealingKeyVersion,
  });
  assert.ok((await user.keyVault.testBrokerKey({ brokerKeyId: put.key!.id })).ok);
  const replay = () =>
    clients(adminToken).keyVault.putBrokerKey({
      broker: "sim",
      environment: TradingMode.PAPER,
      keyId,
      sealedSecret: sealed.sealedSecret,
      sealingKeyVersion: sealed.sealingKeyVersion,
    });
  await assert.rejects(replay, (err: unknown) => err instanceof ConnectError && err.code === Code.InvalidArgument);
});

test("an order with three bad fields names all three in BadRequest, with ErrorInfo", async () => {
  const err = await clients(userToken)
    .orders.submitOrder({
      clientOrderId: "ts-bad-1",
      symbol: "",
      side: OrderSide.BUY,
      type: OrderType.MARKET,
      qty: "-1",
      timeInForce: TimeInForce.DAY,
      origin: OrderOrigin.UNSPECIFIED,
    })
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  assert.ok(err instanceof ConnectError, String(err));
  assert.equal(err.code, Code.InvalidArgument);
  // connect-es reads grpc-status-details-bin; findDetails decodes each Any by its schema.
  const [info] = err.findDetails(ErrorInfoSchema);
  assert.equal(info?.reason, "INVALID_FIELD");
  assert.equal(info?.domain, "tradewink.v1");
  const fields = err.findDetails(BadRequestSchema).flatMap((b) => b.fieldViolations.map((v) => v.field));
  assert.deepEqual(fields, ["symbol", "origin", "qty"]);
  assert.deepEqual(errorDetails(err).fieldViolations.map((v) => v.field), fields);
  assert.equal(err.findDetails(RetryInfoSchema).length, 0);
});

test("an unauthenticated call says UNAUTHENTICATED in ErrorInfo", async () => {
  const err = await clients("bad.token.x")
    .auth.whoAmI({})
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  assert.equal(errorDetails(err).reason, "UNAUTHENTICATED");
});

test("withRetryInfo waits the RetryInfo delay and retries; other errors are thrown at once", async () => {
  let calls = 0;
  const limited = () =>
    new ConnectError("rate limit exceeded, retry later", Code.ResourceExhausted, undefined, [
      { desc: RetryInfoSchema, value: create(RetryInfoSchema, { retryDelay: create(DurationSchema, { nanos: 20_000_000 }) }) },
    ]);
  const started = Date.now();
  const got = await withRetryInfo(async () => {
    if (++calls < 3) throw limited();
    return "done";
  });
  assert.equal(got, "done");
  assert.equal(calls, 3);
  assert.ok(Date.now() - started >= 35);
  calls = 0;
  await assert.rejects(
    withRetryInfo(async () => {
      calls++;
      throw new ConnectError("down", Code.Unavailable);
    }),
    /down/,
  );
  assert.equal(calls, 1);
});
