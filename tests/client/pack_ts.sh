#!/bin/sh
# client_ts_pack: the TypeScript package as a backend gets it. `npm pack` in client/ts (prepack
# compiles dist/ from the committed src/gen), then a fresh project in a temp directory outside
# the repository installs the .tgz (npm install --prefer-offline: its three runtime dependencies
# come from the npm cache or registry) and makes real calls to a tradewinkd on loopback through
# `import ... from "@tradewink/client"` (exports map, no path into the package).
# Usage: pack_ts.sh CLIENT_TS_DIR TRADEWINKD. Exit 77 (skip) without npm.
set -eu
ts_dir=$(cd "$1" && pwd)
export TW_BINARY=$2
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    echo "SKIP: node/npm not installed"
    exit 77
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/twc-pack-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
npmq="--no-fund --no-audit --loglevel=error"

# The same lock as client_ts: both use client/ts/node_modules and dist/.
exec 9>"${TMPDIR:-/tmp}/twc-ts-$(id -u).lock"
flock 9
cd "$ts_dir"
npm ci $npmq
tgz=$(npm pack --silent --pack-destination "$work" | tail -n 1)
flock -u 9
echo "packed $tgz"

# What the tarball holds: compiled JS and types, the generated code; no tests, no lockfile.
list=$(tar -tzf "$work/$tgz")
for f in package/package.json package/README.md package/dist/src/index.js \
    package/dist/src/index.d.ts package/dist/src/gen/tradewink/v1/orders_pb.js \
    package/dist/src/gen/google/rpc/error_details_pb.d.ts package/src/gen/tradewink/v1/orders_pb.ts; do
    printf '%s\n' "$list" | grep -qx "$f" || { echo "FAIL: $f missing from $tgz"; exit 1; }
done
if printf '%s\n' "$list" | grep -q '^package/\(dist/\)\?test/'; then
    echo "FAIL: tests shipped in $tgz"
    exit 1
fi

mkdir "$work/app"
cd "$work/app"
printf '{"name":"tw-backend-check","private":true,"type":"module"}\n' >package.json
npm install --prefer-offline $npmq "$work/$tgz"
cat >check.mjs <<'JS'
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  Code, ConnectError, HealthCheckResponse_ServingStatus, OrderOrigin, OrderSide, OrderType,
  Role, TimeInForce, createTradewinkClients, createTradewinkTransport, errorDetails,
} from "@tradewink/client";

const dir = mkdtempSync(join(tmpdir(), "twc-pack-srv-"));
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("TW_") && !/proxy/i.test(k)));
Object.assign(env, { TW_LISTEN: "127.0.0.1:0", TW_OPS_LISTEN: "127.0.0.1:0" });
const srv = spawn(process.env.TW_BINARY, [], { cwd: dir, env, stdio: ["ignore", "ignore", "pipe"] });
try {
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("tradewinkd did not start")), 20_000);
    srv.once("exit", (c) => reject(new Error(`tradewinkd exited ${c}`)));
    let buf = "";
    srv.stderr.on("data", (chunk) => {
      buf += chunk;
      for (let nl; (nl = buf.indexOf("\n")) >= 0; buf = buf.slice(nl + 1)) {
        try {
          const ev = JSON.parse(buf.slice(0, nl));
          if (ev.event === "listening") { clearTimeout(timer); resolve(ev.port); }
        } catch { /* not JSON */ }
      }
    });
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  const anon = createTradewinkClients(createTradewinkTransport({ baseUrl }));
  assert.equal((await anon.health.check({})).status, HealthCheckResponse_ServingStatus.SERVING);
  const { token } = await anon.auth.issueDevToken({ subject: "pack-user", role: Role.USER, ttlSeconds: 600n });
  const tw = createTradewinkClients(createTradewinkTransport({ baseUrl, token: () => token, defaultTimeoutMs: 5000 }));
  assert.equal((await tw.auth.whoAmI({})).subject, "pack-user");
  const err = await tw.orders.submitOrder({
    clientOrderId: "p1", symbol: "", side: OrderSide.BUY, type: OrderType.MARKET, qty: "0",
    timeInForce: TimeInForce.DAY, origin: OrderOrigin.USER,
  }).then(() => undefined, (e) => e);
  assert.ok(err instanceof ConnectError && err.code === Code.InvalidArgument, String(err));
  const d = errorDetails(err);
  assert.equal(d.reason, "INVALID_FIELD");
  assert.deepEqual(d.fieldViolations.map((v) => v.field), ["symbol", "qty"]);
  console.log("ok: health, dev token, WhoAmI, error details through the installed package");
} finally {
  srv.kill("SIGTERM");
  await new Promise((r) => (srv.exitCode !== null ? r() : srv.once("exit", r)));
  rmSync(dir, { recursive: true, force: true });
}
JS
node check.mjs
