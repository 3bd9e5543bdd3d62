import { createReadStream, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';

/**
 * A tar (POSIX ustar) stream of files in a folder, written here rather than with a dependency: a
 * header block per file, its bytes read as a stream, zero padding to 512, two zero blocks at the
 * end. Memory stays at one read buffer whatever the sizes. Sizes past 8 GiB use the base-256 form
 * GNU tar and libarchive read.
 */
export function tarStream(dir: string, files: string[], prefix: string): Readable {
  async function* blocks(): AsyncGenerator<Buffer> {
    for (const f of files) {
      const path = join(dir, f);
      const { size, mtimeMs } = statSync(path);
      yield header(`${prefix}/${f}`, size, Math.floor(mtimeMs / 1000));
      let sent = 0;
      for await (const chunk of createReadStream(path)) {
        const b = chunk as Buffer;
        // A file that grows after its header would corrupt the archive: cut at the size announced.
        const part = sent + b.length > size ? b.subarray(0, size - sent) : b;
        sent += part.length;
        if (part.length) yield part;
        if (sent >= size) break;
      }
      if (sent < size) throw new Error(`${f} shrank while it was archived`);
      const pad = (512 - (size % 512)) % 512;
      if (pad) yield Buffer.alloc(pad);
    }
    yield Buffer.alloc(1024);
  }
  return Readable.from(blocks(), { objectMode: false });
}

function octal(b: Buffer, offset: number, length: number, value: number): void {
  b.write(`${value.toString(8).padStart(length - 1, '0')}\0`, offset, length, 'ascii');
}

function header(name: string, size: number, mtime: number): Buffer {
  const b = Buffer.alloc(512);
  const n = Buffer.from(name, 'utf8');
  if (n.length > 100) throw new Error(`tar: name too long: ${name}`);
  n.copy(b, 0);
  octal(b, 100, 8, 0o644);
  octal(b, 108, 8, 0);
  octal(b, 116, 8, 0);
  if (size < 8 ** 11) octal(b, 124, 12, size);
  else {
    b[124] = 0x80; // base-256
    let v = BigInt(size);
    for (let i = 135; i > 124; i--) {
      b[i] = Number(v & 0xffn);
      v >>= 8n;
    }
  }
  octal(b, 136, 12, mtime);
  b.fill(0x20, 148, 156); // checksum counted as spaces
  b.write('0', 156, 1, 'ascii'); // a regular file
  b.write('ustar\0', 257, 6, 'ascii');
  b.write('00', 263, 2, 'ascii');
  b.write('tenantgate', 265, 32, 'ascii');
  b.write('tenantgate', 297, 32, 'ascii');
  let sum = 0;
  for (const x of b) sum += x;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return b;
}
