/**
 * builders: the builders' side. The preflight's own SSH handshake with each builder (preflight.ts, over ssh2), what the
 * builder's Nix says about itself (builder-facts.ts), the verdict (preflight-verdict.ts) and its messages
 * (preflight-messages.ts), running it for every builder and admitting the healthy ones (preflight-run.ts), and the
 * second look at a builder Nix lost after the preflight (second-look.ts).
 * May import: base, inputs, nix, runner.
 */

export { admitBuilders, checkAgain, preflight, type PreflightOutcome } from './preflight-run.js'
export type { PreflightResult } from './preflight-verdict.js'
export { secondLook } from './second-look.js'
