/**
 * Test certificates made with openssl at test time (docs/security.md "TLS"):
 * a CA, a server certificate for 127.0.0.1/localhost, and client certificates
 * with a given CN. Everything goes to a temporary directory; remove() deletes it.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TestPki {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  /** A client certificate whose subject CN is `cn`, signed by `ca` (or by a CA of its own if `untrusted`). */
  client(cn: string, opts?: { untrusted?: boolean }): { cert: string; key: string };
  /** Issues a new server certificate into `serverCert`/`serverKey` (same paths); returns its serial. */
  renewServer(): string;
  remove(): void;
}

function openssl(args: string[], cwd: string): string {
  return execFileSync("openssl", args, { cwd, stdio: ["ignore", "pipe", "pipe"] }).toString();
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), "linli-pki-"));
  const p = (f: string) => join(dir, f);
  const selfSigned = (name: string, cn: string) =>
    openssl(
      [
        "req",
        "-x509",
        ...EC,
        "-days",
        "2",
        "-keyout",
        `${name}.key`,
        "-out",
        `${name}.crt`,
        "-subj",
        `/CN=${cn}`,
      ],
      dir,
    );
  selfSigned("ca", "Linli test CA");
  selfSigned("rogue-ca", "Rogue CA");
  writeFileSync(p("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  const issue = (name: string, cn: string, ca: string, ext?: string) => {
    openssl(["req", ...EC, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${cn}`], dir);
    openssl(
      [
        "x509",
        "-req",
        "-in",
        `${name}.csr`,
        "-CA",
        `${ca}.crt`,
        "-CAkey",
        `${ca}.key`,
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        `${name}.crt`,
        ...(ext ? ["-extfile", ext] : []),
      ],
      dir,
    );
    return { cert: p(`${name}.crt`), key: p(`${name}.key`) };
  };
  issue("server", "linli-gateway", "ca", "server.ext");
  let n = 0;
  return {
    dir,
    ca: p("ca.crt"),
    serverCert: p("server.crt"),
    serverKey: p("server.key"),
    client: (cn, opts = {}) => issue(`client-${n++}`, cn, opts.untrusted ? "rogue-ca" : "ca"),
    renewServer: () => {
      issue("server", "linli-gateway", "ca", "server.ext");
      return openssl(["x509", "-in", "server.crt", "-noout", "-serial"], dir).trim();
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
