/**
 * sealBrokerSecret: seal a broker secret to tradewinkd's sealing key in the trader's browser
 * (or node), so the web backend and any TLS-terminating edge only ever relay ciphertext.
 * WebCrypto only (globalThis.crypto.subtle: browsers, node >= 20). The scheme is the contract
 * of PutBrokerKeyRequest.sealed_secret in proto/tradewink/v1/keyvault.proto: ECDH P-256 with
 * an ephemeral key, HKDF-SHA256 (salt = the ephemeral public point, info "tradewink-seal-v1"),
 * AES-256-GCM with a random 12-byte IV and associated data binding user, broker, key id,
 * environment and sealing key version.
 */

/** What the sealed secret is bound to; it opens for exactly these values. */
export interface SealBinding {
  /** The trader's JWT subject (`sub`), as the server sees it on PutBrokerKey. */
  user: string;
  /** "alpaca" or "sim". */
  broker: string;
  /** The broker key id sent in PutBrokerKeyRequest.key_id. */
  keyId: string;
  /** "paper" or "live" (PutBrokerKeyRequest.environment). */
  environment: "paper" | "live";
}

/** The sealed blob and the version to send with it (PutBrokerKeyRequest.sealing_key_version). */
export interface SealedSecret {
  sealedSecret: Uint8Array;
  sealingKeyVersion: number;
}

const INFO = new TextEncoder().encode("tradewink-seal-v1");

function lengthPrefixed(fields: string[]): Uint8Array {
  const enc = new TextEncoder();
  const parts = fields.map((f) => enc.encode(f));
  const out = new Uint8Array(parts.reduce((n, p) => n + 8 + p.length, 0));
  const view = new DataView(out.buffer);
  let at = 0;
  for (const p of parts) {
    view.setBigUint64(at, BigInt(p.length));
    out.set(p, at + 8);
    at += 8 + p.length;
  }
  return out;
}

/**
 * Seals secret to the key from KeyVault.GetSealingKey (publicKey: its 65-byte uncompressed
 * point; version: its version). The result is only ever useful to that server, for that
 * binding; the plaintext is not kept.
 */
export async function sealBrokerSecret(
  publicKey: Uint8Array,
  version: number,
  binding: SealBinding,
  secret: string,
): Promise<SealedSecret> {
  const subtle = globalThis.crypto.subtle;
  if (publicKey.length !== 65 || publicKey[0] !== 4) throw new Error("sealing key: not a P-256 point");
  const server = await subtle.importKey("raw", publicKey, { name: "ECDH", namedCurve: "P-256" }, false, []);
  const eph = await subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, false, ["deriveBits"]);
  const ephPub = new Uint8Array(await subtle.exportKey("raw", eph.publicKey));
  const shared = await subtle.deriveBits({ name: "ECDH", public: server }, eph.privateKey, 256);
  const ikm = await subtle.importKey("raw", shared, "HKDF", false, ["deriveKey"]);
  const key = await subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: ephPub, info: INFO },
    ikm,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt"],
  );
  const iv = globalThis.crypto.getRandomValues(new Uint8Array(12));
  const aad = lengthPrefixed([
    "tradewink-seal-v1",
    binding.user,
    binding.broker,
    binding.keyId,
    binding.environment,
    String(version),
  ]);
  const ct = new Uint8Array(
    await subtle.encrypt({ name: "AES-GCM", iv, additionalData: aad }, key, new TextEncoder().encode(secret)),
  );
  const sealed = new Uint8Array(65 + 12 + ct.length);
  sealed.set(ephPub, 0);
  sealed.set(iv, 65);
  sealed.set(ct, 77);
  return { sealedSecret: sealed, sealingKeyVersion: version };
}
