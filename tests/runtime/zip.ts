/** A small ZIP writer for tests: stored or deflated members, with headers that can lie. */
import { crc32 } from "../../runtime/params.ts";

async function deflateRaw(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new CompressionStream("deflate-raw"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

export interface Member {
  name: string;
  /** The uncompressed bytes. */
  data: Uint8Array;
  /** Deflate them (method 8) or store them (method 0). */
  deflate: boolean;
  /** Overrides of what the headers declare. */
  size?: number;
  crc?: number;
  /** Replaces the compressed bytes. */
  raw?: Uint8Array;
}

/** A ZIP archive laid out as numpy's zipfile writes one (local headers, directory, end). */
export async function zip(members: Member[]): Promise<Uint8Array> {
  const enc = new TextEncoder();
  const parts: number[] = [];
  const u16 = (v: number) => parts.push(v & 0xff, (v >>> 8) & 0xff);
  const u32 = (v: number) => {
    u16(v & 0xffff);
    u16(v >>> 16);
  };
  const put = (b: Uint8Array) => parts.push(...b);
  const central: (() => void)[] = [];
  for (const m of members) {
    const body = m.raw ?? (m.deflate ? await deflateRaw(m.data) : m.data);
    const name = enc.encode(m.name);
    const crc = m.crc ?? crc32(m.data);
    const size = m.size ?? m.data.length;
    const method = m.deflate ? 8 : 0;
    const offset = parts.length;
    u32(0x04034b50);
    u16(20);
    u16(0);
    u16(method);
    u16(0);
    u16(0x21);
    u32(crc);
    u32(body.length);
    u32(size);
    u16(name.length);
    u16(0);
    put(name);
    put(body);
    central.push(() => {
      u32(0x02014b50);
      u16(20);
      u16(20);
      u16(0);
      u16(method);
      u16(0);
      u16(0x21);
      u32(crc);
      u32(body.length);
      u32(size);
      u16(name.length);
      u16(0);
      u16(0);
      u16(0);
      u16(0);
      u32(0);
      u32(offset);
      put(name);
    });
  }
  const cdOffset = parts.length;
  for (const c of central) c();
  const cdSize = parts.length - cdOffset;
  u32(0x06054b50);
  u16(0);
  u16(0);
  u16(members.length);
  u16(members.length);
  u32(cdSize);
  u32(cdOffset);
  u16(0);
  return new Uint8Array(parts);
}
