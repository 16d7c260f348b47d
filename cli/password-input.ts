/**
 * The password for `linli passwd`: never from the command line (it would stay
 * in the shell's history and in `ps`). From a terminal it is asked for twice
 * without echo; from a pipe or file, the first line is taken
 * (`printf %s "$PW" | linli passwd`, `linli passwd < secret.txt`).
 */
import type { ReadStream } from "node:tty";

const MAX_BYTES = 1024;

export async function readPassword(
  input: NodeJS.ReadableStream,
  prompt: NodeJS.WritableStream,
): Promise<string> {
  const tty = (input as ReadStream).isTTY === true;
  if (!tty) return checked(firstLine(await readAll(input)));
  const first = await ask(input as ReadStream, prompt, "Password: ");
  const again = await ask(input as ReadStream, prompt, "Again: ");
  if (first !== again) throw new Error("linli passwd: the two passwords differ");
  return checked(first);
}

function checked(pw: string): string {
  if (pw.length === 0) throw new Error("linli passwd: empty password");
  return pw;
}

function firstLine(text: string): string {
  const nl = text.indexOf("\n");
  return (nl < 0 ? text : text.slice(0, nl)).replace(/\r$/, "");
}

async function readAll(input: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of input) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
    n += b.length;
    if (n > MAX_BYTES) throw new Error(`linli passwd: input longer than ${MAX_BYTES} bytes`);
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** One line from a terminal in raw mode: nothing echoed; Backspace edits, Ctrl-C aborts. */
function ask(input: ReadStream, prompt: NodeJS.WritableStream, question: string): Promise<string> {
  prompt.write(question);
  input.setRawMode(true);
  input.resume();
  return new Promise((resolve, reject) => {
    let line = "";
    const done = (err: Error | null) => {
      input.off("data", onData);
      input.setRawMode(false);
      input.pause();
      prompt.write("\n");
      if (err) reject(err);
      else resolve(line);
    };
    const onData = (data: Buffer) => {
      for (const ch of data.toString("utf8")) {
        if (ch === "\r" || ch === "\n") return done(null);
        if (ch === "\u0003") return done(new Error("linli passwd: interrupted"));
        if (ch === "\u007f" || ch === "\b") line = line.slice(0, -1);
        else if (line.length < MAX_BYTES) line += ch;
      }
    };
    input.on("data", onData);
  });
}
