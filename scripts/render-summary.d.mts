// Types of scripts/render-summary.mjs, for the unit tests that import it.

export declare const CONTENT_WIDTH: number
export declare const PAGE_PADDING: number

export interface Annotation {
  level: 'error' | 'warning' | 'notice'
  /** The `title` property, decoded; undefined when the command has none. */
  title: string | undefined
  /** Every property of the command, decoded. */
  properties: Record<string, string>
  /** The message, decoded. */
  message: string
}

export declare function escapeHtml(text: string): string
export declare function sanitizeHtml(html: string): string
export declare function renderMarkdown(source: string): string
export declare function summaryPage(source: string, options?: { title?: string }): string
export declare function unescapeData(text: string): string
export declare function unescapeProperty(text: string): string
export declare function parseAnnotations(log: string): Annotation[]
export declare function annotationPage(annotations: Annotation[]): string
