import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { deflateSync, inflateSync } from 'node:zlib'
import { afterAll, describe, expect, it } from 'vitest'
import {
  annotationPage,
  parseAnnotations,
  renderMarkdown,
  summaryPage,
  unescapeData,
  unescapeProperty
} from '../../scripts/render-summary.mjs'

/**
 * scripts/render-summary.mjs, which renders a job summary and a failure's annotations to the HTML pages that
 * scripts/screenshots.sh screenshots for the README; and scripts/png-trim.mjs, which cuts the screenshots to size.
 */

const ROOT = join(import.meta.dirname, '..', '..')
const RENDER = join(ROOT, 'scripts', 'render-summary.mjs')
const TRIM = join(ROOT, 'scripts', 'png-trim.mjs')
const work = mkdtempSync(join(tmpdir(), 'render-summary-test-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

/** Each table of the HTML: its header cells' count and each body row's cell count. */
function tables(html: string): { header: number; rows: number[] }[] {
  return [...html.matchAll(/<table>([\s\S]*?)<\/table>/g)].map(([, table = '']) => {
    const [head = '', body = ''] = table.split('</thead>')
    return {
      header: (head.match(/<th[\s>]/g) ?? []).length,
      rows: [...body.matchAll(/<tr>([\s\S]*?)<\/tr>/g)].map(
        ([, row = '']) => (row.match(/<td[\s>]/g) ?? []).length
      )
    }
  })
}

const SUMMARY = `## nix-offload

✅ **Confirmed**: all 2 derivation(s) were built on a builder.

| derivation | built on | duration | status |
| --- | --- | --- | --- |
| \`a\\|b\` | 127.0.0.1:2201 | 1.0 s | built |
| \`c\` | 127.0.0.1:2202 | 2.0 s | built |

<details><summary>Out paths</summary>

- \`/nix/store/aaaa-a\`

</details>
`

const LOG = [
  'building…',
  '::error title=nix-offload%3A b@h%3A22 host-key-mismatch::first line%0Asecond: <script>alert(1)</script> 100%25',
  '::error::no title & <b>bold</b>',
  '::warning file=a.nix,line=3::careful',
  '::debug::not an annotation',
  '::endgroup::',
  'a line with ::error:: in it'
].join('\n')

describe('the summary page', () => {
  const page = summaryPage(SUMMARY)

  it('renders the GFM table with its columns, inside a markdown-body article styled by github-markdown-css', () => {
    expect(tables(page)).toEqual([{ header: 4, rows: [4, 4] }])
    expect(page).toContain('<code>a|b</code>')
    expect(page).toMatch(/<article class="markdown-body">/)
    // The CSS is in the page (github-markdown-css's light theme), so the page shows the same from any directory.
    expect(page).toMatch(/\.markdown-body table \{/)
    expect(page).toContain('nix-offload summary')
    expect(page).toMatch(/<details><summary>Out paths<\/summary>/)
  })

  it('has the title it is given, as text', () => {
    expect(summaryPage('x', { title: 'build <b>summary</b>' })).toContain('build &lt;b&gt;summary&lt;/b&gt;')
  })

  it('shows any other raw HTML as text (negative control: the page has no script and no <img> at all)', () => {
    const hostile =
      'a <script>alert(1)</script> b <img src=x onerror=alert(2)> <details open><summary>s</summary>\n\n' +
      '<div onclick="x()">d</div>\n\n</details>\n'
    const html = renderMarkdown(hostile)
    expect(html).not.toMatch(/<script|<img|<div /i)
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;')
    expect(html).toContain('&lt;img src=x onerror=alert(2)&gt;')
    expect(html).toContain('&lt;div onclick=&quot;x()&quot;&gt;')
    expect(html).toContain('<details open><summary>s</summary>')
    expect(summaryPage(hostile)).not.toMatch(/<script|<img/i)
  })

  it('renders the committed capture of a lab run (docs/screenshots/summary.md) with every table whole', () => {
    const markdown = readFileSync(join(ROOT, 'docs', 'screenshots', 'summary.md'), 'utf8')
    const found = tables(summaryPage(markdown))
    expect(found.length).toBeGreaterThan(0)
    for (const table of found) for (const row of table.rows) expect(row).toBe(table.header)
  })
})

describe('annotations', () => {
  it('decodes a property and a message as the runner does, each escape once', () => {
    expect(unescapeProperty('nix-offload%3A a%2C b%0D%0Ac %25 %253A')).toBe('nix-offload: a, b\r\nc % %3A')
    // A message is escaped with %25, %0D and %0A only (@actions/core's escapeData): %3A and %2C stay as they are.
    expect(unescapeData('a%0Ab%0D%25 %3A %2C %2525')).toBe('a\nb\r% %3A %2C %25')
  })

  it('reads every ::error, ::warning and ::notice line, with its properties', () => {
    expect(parseAnnotations(LOG)).toEqual([
      {
        level: 'error',
        title: 'nix-offload: b@h:22 host-key-mismatch',
        properties: { title: 'nix-offload: b@h:22 host-key-mismatch' },
        message: 'first line\nsecond: <script>alert(1)</script> 100%'
      },
      { level: 'error', title: undefined, properties: {}, message: 'no title & <b>bold</b>' },
      { level: 'warning', title: undefined, properties: { file: 'a.nix', line: '3' }, message: 'careful' }
    ])
  })

  it('renders each as a box with its icon, its title (or "Error") and its message as text, never as HTML', () => {
    const page = annotationPage(parseAnnotations(LOG))
    expect(page).toContain('2 errors and 1 warning')
    expect(page.match(/<div class="annotation error">/g)).toHaveLength(2)
    expect(page.match(/<div class="annotation warning">/g)).toHaveLength(1)
    expect(page).toContain('<div class="title">nix-offload: b@h:22 host-key-mismatch</div>')
    expect(page).toContain('<div class="title">Error</div>')
    expect(page).toContain('first line\nsecond: &lt;script&gt;alert(1)&lt;/script&gt; 100%</div>')
    expect(page).toContain('no title &amp; &lt;b&gt;bold&lt;/b&gt;')
    // Negative control: the message's tags are text, and the page has no tag of its own that they could be.
    expect(page).not.toMatch(/<script|<b>/i)
  })

  it("reads the committed capture of a lab run's failure (docs/screenshots/annotation.txt)", () => {
    const found = parseAnnotations(readFileSync(join(ROOT, 'docs', 'screenshots', 'annotation.txt'), 'utf8'))
    expect(found.length).toBeGreaterThan(0)
    expect(found.every(annotation => annotation.level === 'error')).toBe(true)
    expect(found[0]?.title).toMatch(/^nix-offload: /)
    expect(found[0]?.message).not.toMatch(/%(25|0A|0D)/)
  })
})

describe('the command line', () => {
  it('writes the summary page and the annotation page', () => {
    writeFileSync(join(work, 'summary.md'), SUMMARY)
    writeFileSync(join(work, 'annotation.txt'), LOG)
    execFileSync(process.execPath, [RENDER, 'summary', join(work, 'summary.md'), join(work, 's.html')])
    execFileSync(process.execPath, [RENDER, 'annotation', join(work, 'annotation.txt'), join(work, 'a.html')])
    expect(readFileSync(join(work, 's.html'), 'utf8')).toBe(summaryPage(SUMMARY))
    expect(readFileSync(join(work, 'a.html'), 'utf8')).toBe(annotationPage(parseAnnotations(LOG)))
  })

  it('fails on a log without annotations and on a bad mode', () => {
    writeFileSync(join(work, 'none.txt'), 'nothing to see\n')
    const none = spawnSync(process.execPath, [
      RENDER,
      'annotation',
      join(work, 'none.txt'),
      join(work, 'n.html')
    ])
    expect(none.status).toBe(1)
    expect(spawnSync(process.execPath, [RENDER, 'pdf', 'a', 'b']).status).toBe(2)
  })
})

/** A PNG of `width` × `height` RGB pixels, white but for the rows in `dark`, each row filtered with `filter`. */
function png(width: number, height: number, dark: Set<number>, filter: number): Buffer {
  const rows: Buffer[] = []
  let previous = Buffer.alloc(width * 3)
  for (let y = 0; y < height; y++) {
    const row = Buffer.alloc(width * 3, dark.has(y) ? 0x20 : 0xff)
    // Filter 2 (Up): each byte minus the byte above it.
    const line = filter === 2 ? row.map((byte, x) => (byte - (previous[x] ?? 0)) & 0xff) : row
    rows.push(Buffer.concat([Buffer.from([filter]), line]))
    previous = row
  }
  const chunk = (type: string, data: Buffer): Buffer => {
    const length = Buffer.alloc(4)
    length.writeUInt32BE(data.length)
    return Buffer.concat([length, Buffer.from(type, 'latin1'), data, Buffer.alloc(4)])
  }
  const header = Buffer.alloc(13)
  header.writeUInt32BE(width, 0)
  header.writeUInt32BE(height, 4)
  header.set([8, 2, 0, 0, 0], 8)
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(Buffer.concat(rows))),
    chunk('IEND', Buffer.alloc(0))
  ])
}

/** The height of a PNG and its rows, unfiltered (Up and None only, as png() writes them). */
function readPng(file: string): { height: number; rows: Uint8Array[] } {
  const bytes = readFileSync(file)
  const height = bytes.readUInt32BE(20)
  const width = bytes.readUInt32BE(16)
  const idatLength = bytes.readUInt32BE(33)
  const raw = inflateSync(bytes.subarray(41, 41 + idatLength))
  const rows: Uint8Array[] = []
  let previous: Uint8Array = new Uint8Array(width * 3)
  for (let y = 0; y < height; y++) {
    const start = y * (width * 3 + 1)
    const line = raw.subarray(start + 1, start + 1 + width * 3)
    const row = raw[start] === 2 ? line.map((byte, x) => (byte + (previous[x] ?? 0)) & 0xff) : line
    rows.push(row)
    previous = row
  }
  return { height, rows }
}

describe('scripts/png-trim.mjs', () => {
  it('cuts the empty bottom off, keeping the margin, with the rows as they were', () => {
    for (const filter of [0, 2]) {
      writeFileSync(join(work, 'tall.png'), png(5, 40, new Set([2, 9]), filter))
      execFileSync(process.execPath, [TRIM, join(work, 'tall.png'), join(work, 'cut.png'), '--margin', '4'], {
        stdio: 'pipe'
      })
      const cut = readPng(join(work, 'cut.png'))
      expect(cut.height).toBe(14)
      expect(cut.rows.map(row => row[0])).toEqual(
        Array.from({ length: 14 }, (_, y) => (y === 2 || y === 9 ? 0x20 : 0xff))
      )
    }
  })

  it('exits with 3 when the content reaches the bottom margin', () => {
    writeFileSync(join(work, 'full.png'), png(5, 12, new Set([10]), 0))
    const run = spawnSync(process.execPath, [
      TRIM,
      join(work, 'full.png'),
      join(work, 'x.png'),
      '--margin',
      '4'
    ])
    expect(run.status).toBe(3)
  })
})
