export interface CanaryTarget {
  /** The attribute to build, e.g. b1. */
  attribute: string
  /** Derivation name; carries the nonce, so no store anywhere can hold it yet. */
  name: string
  system: string
}

/**
 * A Nix file with one derivation per builder. Each needs no nixpkgs (the sandbox's /bin/sh is enough, docs/nix.md,
 * "Runner details"),
 * takes the payload as input (so it must be copied to the builder) and writes an output of the same size with shell
 * builtins only (so it must be copied back).
 */
export function renderCanaryExpression(
  targets: CanaryTarget[],
  payloadFile: string,
  payloadMb: number
): string {
  const kibibytes = Math.max(1, Math.round(payloadMb * 1024))
  const script =
    'echo nix-offload canary $name; i=0; ' +
    `while [ $i -lt ${kibibytes} ]; do printf %s "$chunk"; i=$((i+1)); done > $out`
  const lines = ['let', `  payload = ${nixPath(payloadFile)};`, 'in {']
  for (const target of targets) {
    const chunk = target.name
      .replace(/[^a-z0-9]/g, '')
      .padEnd(16, '0')
      .repeat(64)
      .slice(0, 1024)
    lines.push(
      `  ${target.attribute} = builtins.derivation {`,
      `    name = ${nixString(target.name)};`,
      `    system = ${nixString(target.system)};`,
      '    builder = "/bin/sh";',
      `    args = [ "-c" ${nixString(script)} ];`,
      '    inherit payload;',
      `    chunk = ${nixString(chunk)};`,
      '  };'
    )
  }
  lines.push('}')
  return lines.join('\n') + '\n'
}

function nixString(text: string): string {
  return `"${text.replace(/[\\"$]/g, ch => `\\${ch}`)}"`
}

/** A Nix path literal must not contain spaces or quotes; the caller makes the file under a plain temp path. */
function nixPath(path: string): string {
  if (!/^\/[A-Za-z0-9._+\-/]+$/.test(path)) throw new Error(`cannot use ${path} as a Nix path literal`)
  return path
}
