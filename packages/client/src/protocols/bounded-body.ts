/**
 * Reads an HTTP answer's body with a size cap, for the protocol clients: a
 * server (or something in the middle) that streams without end must not
 * exhaust the device's memory.
 */

/** The body's bytes; past `max` bytes the stream is destroyed and `tooLarge()` is thrown. */
export async function readBoundedBody(body: AsyncIterable<unknown> & { destroy(): unknown }, max: number, tooLarge: () => Error): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > max) {
      body.destroy();
      throw tooLarge();
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
