// Cuts the empty bottom off a screenshot (scripts/screenshots.sh takes them taller than their content):
//
//   node scripts/png-trim.mjs IN.png OUT.png [--margin PX]
//
// Keeps every row down to the last one that differs from the bottom-left pixel's colour, plus PX rows (default 16).
// Exits with 3, writing nothing, when the content reaches the bottom margin: the screenshot may have cut it off.
// Reads 8-bit RGB/RGBA non-interlaced PNGs, as Chromium writes them. The rows kept are written as they were filtered
// (a row's filter refers only to the rows above it), so nothing is re-filtered; only the image data is re-deflated.
import { readFileSync, writeFileSync } from 'node:fs'
import { deflateSync, inflateSync } from 'node:zlib'
import { Buffer } from 'node:buffer'
import console from 'node:console'
import process from 'node:process'

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
  return c >>> 0
})

function crc32(bytes) {
  let c = 0xffffffff
  for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

function chunk(type, data) {
  const head = Buffer.alloc(8)
  head.writeUInt32BE(data.length, 0)
  head.write(type, 4, 'latin1')
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0)
  return Buffer.concat([head, data, crc])
}

function readChunks(png) {
  if (!png.subarray(0, 8).equals(SIGNATURE)) throw new Error('not a PNG')
  const chunks = []
  for (let at = 8; at < png.length;) {
    const length = png.readUInt32BE(at)
    chunks.push({ type: png.toString('latin1', at + 4, at + 8), data: png.subarray(at + 8, at + 8 + length) })
    at += 12 + length
  }
  return chunks
}

function paeth(a, b, c) {
  const p = a + b - c
  const pa = Math.abs(p - a)
  const pb = Math.abs(p - b)
  const pc = Math.abs(p - c)
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c
}

/** The index of the last row with a pixel unlike the bottom-left one, or -1. */
function lastContentRow(raw, width, height, bpp) {
  const stride = width * bpp
  let previous = new Uint8Array(stride)
  const rows = []
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1))
    const row = new Uint8Array(stride)
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? row[x - bpp] : 0
      const b = previous[x]
      const c = x >= bpp ? previous[x - bpp] : 0
      const predictor = [0, a, b, (a + b) >> 1, paeth(a, b, c)][filter]
      if (predictor === undefined) throw new Error(`unknown PNG filter ${filter}`)
      row[x] = (line[x] + predictor) & 0xff
    }
    rows.push(row)
    previous = row
  }
  const background = rows[height - 1].subarray(0, bpp)
  for (let y = height - 1; y >= 0; y--) {
    const row = rows[y]
    for (let x = 0; x < stride; x += bpp) {
      for (let i = 0; i < bpp; i++) if (row[x + i] !== background[i]) return y
    }
  }
  return -1
}

function main(argv) {
  const [input, output, flag, value] = argv
  const margin = flag === '--margin' ? Number(value) : 16
  if (input === undefined || output === undefined || !(Number.isInteger(margin) && margin >= 0)) {
    console.error('usage: png-trim.mjs IN.png OUT.png [--margin PX]')
    return 2
  }
  const chunks = readChunks(readFileSync(input))
  const header = chunks.find(c => c.type === 'IHDR')?.data
  if (header === undefined) throw new Error(`${input}: no IHDR`)
  const width = header.readUInt32BE(0)
  const height = header.readUInt32BE(4)
  const [depth, colourType, , , interlace] = header.subarray(8, 13)
  const bpp = { 2: 3, 6: 4 }[colourType]
  if (depth !== 8 || bpp === undefined || interlace !== 0) {
    throw new Error(
      `${input}: only 8-bit RGB/RGBA non-interlaced PNGs (depth ${depth}, colour type ${colourType})`
    )
  }
  const raw = inflateSync(Buffer.concat(chunks.filter(c => c.type === 'IDAT').map(c => c.data)))
  const last = lastContentRow(raw, width, height, bpp)
  const keep = last + 1 + margin
  if (keep > height) {
    console.error(
      `${input}: the content reaches the bottom (row ${last} of ${height}): take a taller screenshot`
    )
    return 3
  }
  const ihdr = Buffer.from(header)
  ihdr.writeUInt32BE(keep, 4)
  const data = deflateSync(raw.subarray(0, keep * (width * bpp + 1)), { level: 9 })
  // Only the chunks needed to show the picture: a screenshot has no palette, text or colour profile to keep.
  writeFileSync(
    output,
    Buffer.concat([SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', data), chunk('IEND', Buffer.alloc(0))])
  )
  console.error(`${output}: ${width}×${keep} (cut from ${height})`)
  return 0
}

process.exitCode = main(process.argv.slice(2))
