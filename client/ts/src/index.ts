/**
 * @tradewink/client - typed clients for the tradewink.v1 gRPC API.
 *
 * The message and service types come from `npm run generate` (buf + protoc-gen-es, into
 * src/gen); this file only adds the transport setup every caller needs: gRPC over HTTP/2
 * (Connect's createGrpcTransport), plaintext only to loopback, TLS / mTLS otherwise, and the
 * `authorization: Bearer <token>` header on every call.
 */
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import { Health } from "./gen/grpc/health/v1/health_pb.js";
import { Audit } from "./gen/tradewink/v1/audit_pb.js";
import { Auth } from "./gen/tradewink/v1/auth_pb.js";
import { KeyVault } from "./gen/tradewink/v1/keyvault_pb.js";
import { Orders } from "./gen/tradewink/v1/orders_pb.js";
import { Risk } from "./gen/tradewink/v1/risk_pb.js";
import { Sim } from "./gen/tradewink/v1/sim_pb.js";

export * from "./gen/grpc/health/v1/health_pb.js";
export * from "./gen/tradewink/v1/audit_pb.js";
export * from "./gen/tradewink/v1/auth_pb.js";
export * from "./gen/tradewink/v1/common_pb.js";
export * from "./gen/tradewink/v1/keyvault_pb.js";
export * from "./gen/tradewink/v1/orders_pb.js";
export * from "./gen/tradewink/v1/risk_pb.js";
export * from "./gen/tradewink/v1/sim_pb.js";
export { Code, ConnectError } from "@connectrpc/connect";

/** A bearer token, or a function returning the current one (e.g. the signed-in user's). */
export type TokenSource = string | (() => string | Promise<string>);

export interface TradewinkTransportOptions {
  /** "http://127.0.0.1:50051" (loopback only) or "https://tradewink.internal:443". */
  baseUrl: string;
  /** Sent as `authorization: Bearer <token>` on every call unless the call sets its own. */
  token?: TokenSource;
  /** PEM CA bundle that signs the server certificate (https only; default: Node's roots). */
  ca?: string | Buffer;
  /** PEM client certificate and key for mTLS (https only). */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Default deadline for unary calls in milliseconds (default 10000). */
  defaultTimeoutMs?: number;
}

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])$/;

/** Builds the gRPC transport; refuses plaintext to anything but loopback. */
export function createTradewinkTransport(opts: TradewinkTransportOptions): Transport {
  const url = new URL(opts.baseUrl);
  if (url.protocol === "http:" && !LOOPBACK.test(url.hostname)) {
    throw new Error(`refusing plaintext to non-loopback ${url.host}: use https://`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`unsupported scheme ${url.protocol}`);
  }
  const interceptors: Interceptor[] = [];
  const token = opts.token;
  if (token !== undefined) {
    interceptors.push((next) => async (req) => {
      if (!req.header.has("authorization")) {
        const value = typeof token === "function" ? await token() : token;
        if (value !== "") req.header.set("authorization", `Bearer ${value}`);
      }
      return next(req);
    });
  }
  return createGrpcTransport({
    baseUrl: opts.baseUrl,
    interceptors,
    defaultTimeoutMs: opts.defaultTimeoutMs ?? 10_000,
    nodeOptions:
      url.protocol === "https:" ? { ca: opts.ca, cert: opts.cert, key: opts.key } : undefined,
  });
}

/** One typed client per service, sharing one HTTP/2 connection. */
export interface TradewinkClients {
  health: Client<typeof Health>;
  auth: Client<typeof Auth>;
  keyVault: Client<typeof KeyVault>;
  orders: Client<typeof Orders>;
  risk: Client<typeof Risk>;
  audit: Client<typeof Audit>;
  sim: Client<typeof Sim>;
}

export function createTradewinkClients(transport: Transport): TradewinkClients {
  return {
    health: createClient(Health, transport),
    auth: createClient(Auth, transport),
    keyVault: createClient(KeyVault, transport),
    orders: createClient(Orders, transport),
    risk: createClient(Risk, transport),
    audit: createClient(Audit, transport),
    sim: createClient(Sim, transport),
  };
}

/** Per-call header that overrides the transport's token (e.g. acting for another user). */
export function bearer(token: string): { headers: Record<string, string> } {
  return { headers: { authorization: `Bearer ${token}` } };
}
