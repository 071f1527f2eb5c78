/**
 * agent: the file agent, the one place that changes root's files (root's ssh config, the daemon's machines file,
 * nix.conf). Blocks of each job's own (blocks.ts), a kernel lock per shared file in a directory of the agent's own
 * (lock.ts), a new file renamed over the old, never through a symlink or into the Nix store (replace.ts). Run in the
 * action's process, or as root from its own bundle (main.ts) with the request checked first (request.ts).
 * May import: base, inputs, nix, diagnosis (it uses base only: its bundle runs as root, and stays small).
 */

export { type AgentContext, runAgent } from './agent.js'
export { newToken } from './blocks.js'
export type { AgentRequest, FileOp, FileResult } from './ops.js'
export { parseRequest } from './request.js'
