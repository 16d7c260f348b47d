import { describe, expect, it, vi } from "vitest";
import { mockedClocks } from "../../test/support/mocked-clocks.js";
import {
  credentialFingerprint,
  hashPassword,
  hashProblem,
  PasswordVerifier,
  parseSecret,
} from "./credentials.js";

describe("password hashes", () => {
  it("are self-describing scrypt$N$r$p$salt$hash strings, salted (two hashes of one password differ)", async () => {
    const a = await hashPassword("correct horse", { log2N: 10 });
    const b = await hashPassword("correct horse", { log2N: 10 });
    expect(a).toMatch(/^scrypt\$1024\$8\$1\$[A-Za-z0-9+/]+=*\$[A-Za-z0-9+/]+=*$/);
    expect(a).not.toBe(b);
    expect(hashProblem(a)).toBeNull();
    expect(parseSecret(a)).toMatchObject({ kind: "scrypt", N: 1024, r: 8, p: 1 });
  });

  it("malformed hashes are named problems, not crashes", () => {
    expect(hashProblem("scrypt$1000$8$1$c2FsdHNhbHQ=$aGFzaA==")).toMatch(/power of two/);
    expect(hashProblem("scrypt$1024$8$1$c2FsdHNhbHQ=")).toMatch(/must look like/);
    expect(hashProblem("scrypt$1024$8$1$!!$aGFzaA==")).toMatch(/salt/);
    expect(hashProblem("scrypt$1024$8$1$c2FsdHNhbHQ=$aGFzaA==")).toMatch(/32 bytes/);
    expect(hashProblem("scrypt$1048576$8$1$c2FsdHNhbHQ=$aGFzaA==")).toMatch(/64 MiB/);
  });
});

describe("PasswordVerifier", () => {
  const pw = (s: string) => Buffer.from(s);

  it("verifies plain and hashed secrets; caches successes only", async () => {
    const v = new PasswordVerifier();
    const stored = parseSecret(await hashPassword("s3cret", { log2N: 10 }));
    expect(await v.verify(parseSecret("plain"), pw("plain"))).toBe("ok");
    expect(await v.verify(parseSecret("plain"), pw("plainx"))).toBe("bad-password");
    expect(await v.verify(stored, undefined)).toBe("bad-password");
    expect(await v.verify(stored, pw("wrong"))).toBe("bad-password");
    expect(await v.verify(stored, pw("wrong"))).toBe("bad-password");
    expect(v.stats.scrypt).toBe(2);
    expect(await v.verify(stored, pw("s3cret"))).toBe("ok");
    expect(await v.verify(stored, pw("s3cret"))).toBe("ok");
    expect(v.stats).toMatchObject({ scrypt: 3, cacheHits: 1 });
  });

  it("a cached success expires after its TTL of elapsed time, whatever a step of the wall clock says", async () => {
    const c = mockedClocks();
    try {
      const v = new PasswordVerifier({ cacheTtlMs: 1000 });
      const a = parseSecret(await hashPassword("a", { log2N: 10 }));
      await v.verify(a, pw("a"));
      c.wall -= 86_400_000;
      c.mono += 2000;
      await v.verify(a, pw("a"));
      expect(v.stats).toMatchObject({ scrypt: 2, cacheHits: 0 });
      c.wall += 2 * 86_400_000;
      await v.verify(a, pw("a"));
      expect(v.stats).toMatchObject({ scrypt: 2, cacheHits: 1 });
    } finally {
      vi.restoreAllMocks();
    }
  });

  it("a cached success expires, and the cache is bounded (oldest out)", async () => {
    let now = 0;
    const v = new PasswordVerifier({ cacheTtlMs: 1000, cacheMax: 2, now: () => now });
    const h = await Promise.all(["a", "b", "c"].map((p) => hashPassword(p, { log2N: 10 })));
    const [a, b, c] = h.map(parseSecret) as [
      ReturnType<typeof parseSecret>,
      ReturnType<typeof parseSecret>,
      ReturnType<typeof parseSecret>,
    ];
    await v.verify(a, pw("a"));
    await v.verify(b, pw("b"));
    await v.verify(c, pw("c"));
    await v.verify(a, pw("a")); // evicted by c: scrypt again
    expect(v.stats).toMatchObject({ scrypt: 4, cacheHits: 0 });
    await v.verify(c, pw("c"));
    expect(v.stats.cacheHits).toBe(1);
    now = 2000;
    await v.verify(c, pw("c"));
    expect(v.stats).toMatchObject({ scrypt: 5, cacheHits: 1 });
  });

  it("runs at most maxInFlight at once and refuses beyond the queue (busy), never rejecting", async () => {
    const v = new PasswordVerifier({ maxInFlight: 1, maxQueued: 2 });
    const stored = parseSecret(await hashPassword("x", { log2N: 10 }));
    const results = await Promise.all([1, 2, 3, 4, 5].map((i) => v.verify(stored, pw(`wrong${i}`))));
    expect(results.filter((r) => r === "busy")).toHaveLength(2);
    expect(results.filter((r) => r === "bad-password")).toHaveLength(3);
    // A login whose connection closed while it waited costs no scrypt.
    const before = v.stats.scrypt;
    const [first, abandoned] = await Promise.all([
      v.verify(stored, pw("x")),
      v.verify(stored, pw("x"), () => true),
    ]);
    expect([first, abandoned]).toEqual(["ok", "gone"]);
    expect(v.stats.scrypt).toBe(before + 1);
    // The slots are free again afterwards.
    expect(await v.verify(stored, pw("x"))).toBe("ok");
  });
});

describe("credential fingerprints (what a saved session keeps of its operator's credentials)", () => {
  it("tell credentials apart, never contain the password or the hash, and are stable", async () => {
    const hash = await hashPassword("correct horse", { log2N: 10 });
    const plain = await credentialFingerprint("ops", "correct horse");
    expect(await credentialFingerprint("ops", "correct horse")).toBe(plain);
    expect(await credentialFingerprint("ops", "correct horsf")).not.toBe(plain);
    // Salted with the account: the same password of another account gives another one.
    expect(await credentialFingerprint("ops2", "correct horse")).not.toBe(plain);
    const hashed = await credentialFingerprint("ops", hash);
    expect(hashed).not.toBe(plain);
    expect(await credentialFingerprint("ops", await hashPassword("correct horse", { log2N: 10 }))).not.toBe(
      hashed,
    );
    expect(await credentialFingerprint("ops", null)).toBe("none");
    for (const fp of [plain, hashed]) {
      expect(fp).not.toContain("correct");
      expect(fp).not.toContain(hash.split("$")[5]);
    }
  });
});
