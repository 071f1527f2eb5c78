import { type Token, type Tokens, lexer, parser, Parser, walkTokens } from 'marked'

/**
 * A job summary as a GitHub-Flavored Markdown parser (marked, `gfm: true`) reads it: its tables cell by cell, the raw
 * HTML it lets through, and the tags of the HTML it renders to. The summary tests check its structure with these.
 */

const GFM = { gfm: true } as const

export interface Table {
  /** The header's cells, as rendered text. */
  header: string[]
  /** Each row's cells, as rendered text. */
  rows: string[][]
  /**
   * How many cells each source line of the table has, read strictly: marked, like GFM, pads a short row and drops a
   * long row's extra cells, so the count comes from whether the line is the header of a table of that width.
   */
  lineWidths: number[]
}

export interface ReadSummary {
  tables: Table[]
  /** Every raw HTML token (block or inline), as written in the Markdown. */
  html: string[]
  /** The rendered HTML. */
  rendered: string
  /** The names of every tag in the rendered HTML, each once. */
  tags: string[]
}

export function readSummary(markdown: string): ReadSummary {
  const tokens = lexer(markdown, GFM)
  const tables: Table[] = []
  const html: string[] = []
  walkTokens(tokens, token => {
    if (token.type === 'html') html.push(token.raw.trim())
  })
  for (const token of tokens) if (token.type === 'table') tables.push(readTable(token as Tokens.Table))
  const rendered = parser(tokens, GFM)
  const tags = [
    ...new Set([...rendered.matchAll(/<\/?([A-Za-z][A-Za-z0-9-]*)/g)].map(match => match[1] ?? ''))
  ]
  return { tables, html, rendered, tags: tags.map(tag => tag.toLowerCase()).sort() }
}

function readTable(table: Tokens.Table): Table {
  const lines = table.raw.split('\n').filter(line => line.trim() !== '')
  return {
    header: table.header.map(cell => cellText(cell.tokens)),
    rows: table.rows.map(row => row.map(cell => cellText(cell.tokens))),
    lineWidths: lines.map((line, index) => (index === 1 ? table.header.length : widthOf(line)))
  }
}

/** The number of cells of one table line: the width of the delimiter row that makes it a table's header. */
export function widthOf(line: string): number {
  for (let width = 1; width <= 64; width++) {
    const [token] = lexer(`${line}\n|${' --- |'.repeat(width)}\n`, GFM)
    if (token?.type === 'table' && (token as Tokens.Table).header.length === width) return width
  }
  return 0
}

/** A cell as a reader sees it: its rendered HTML without tags, entities decoded. */
function cellText(tokens: Token[]): string {
  return plainText(Parser.parseInline(tokens, GFM))
}

/** Rendered HTML as a reader sees it: without tags, entities decoded. */
export function plainText(html: string): string {
  return decode(html.replace(/<[^>]*>/g, ''))
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }

function decode(html: string): string {
  return html.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (entity, name: string) => {
    if (name.startsWith('#x') || name.startsWith('#X'))
      return String.fromCodePoint(parseInt(name.slice(2), 16))
    if (name.startsWith('#')) return String.fromCodePoint(Number(name.slice(1)))
    return ENTITIES[name.toLowerCase()] ?? entity
  })
}

/** A value the way a summary shows it: on one line (a line break is a space), trimmed like a table cell. */
export function shown(value: string): string {
  return value.replace(/\r\n|\r|\n/g, ' ').trim()
}
