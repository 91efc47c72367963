import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { BUCKET_COUNT, type BucketMap } from './routing.ts';

/** A bucket map as stored: the cells it names, and each bucket's index into them. */
export interface EncodedBuckets {
  /** Cell ids, in the order the indices refer to them. */
  readonly cells: string[];
  /** Base64 of the deflated little-endian uint16 index of every bucket. */
  readonly buckets: string;
}

/**
 * 16,384 cell ids as a list would be ~130 KB of a 400 KB item; as deflated
 * uint16 indices a map of contiguous ranges is under 100 bytes, and even a
 * map shuffled at random is 6 KB over 3 cells and 19 KB over 40, so a
 * version item keeps room for thousands of overrides.
 */
export function encodeBuckets(map: BucketMap): EncodedBuckets {
  if (map.length !== BUCKET_COUNT) throw new Error(`a bucket map has ${BUCKET_COUNT} entries, not ${map.length}`);
  const cells: string[] = [];
  const indexOf = new Map<string, number>();
  const raw = Buffer.alloc(BUCKET_COUNT * 2);
  map.forEach((cellId, bucket) => {
    let index = indexOf.get(cellId);
    if (index === undefined) {
      index = cells.push(cellId) - 1;
      indexOf.set(cellId, index);
    }
    raw.writeUInt16LE(index, bucket * 2);
  });
  return { cells, buckets: deflateRawSync(raw, { level: 9 }).toString('base64') };
}

export function decodeBuckets(encoded: EncodedBuckets): BucketMap {
  let raw: Buffer;
  try {
    raw = inflateRawSync(Buffer.from(encoded.buckets, 'base64'));
  } catch (error) {
    throw new Error(`bucket map does not inflate: ${(error as Error).message}`);
  }
  if (raw.length !== BUCKET_COUNT * 2) throw new Error(`bucket map holds ${raw.length / 2} buckets, not ${BUCKET_COUNT}`);
  const map = new Array<string>(BUCKET_COUNT);
  for (let bucket = 0; bucket < BUCKET_COUNT; bucket += 1) {
    const index = raw.readUInt16LE(bucket * 2);
    const cellId = encoded.cells[index];
    if (cellId === undefined) throw new Error(`bucket ${bucket} points at cell index ${index}, which the map does not name`);
    map[bucket] = cellId;
  }
  return map;
}
