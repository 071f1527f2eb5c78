import { readFileSync } from 'node:fs'
import { runAgent } from './agent.js'
import { parseRequest } from './request.js'

// The file agent's own bundle (dist/agent), which `sudo -n node` runs as root: the request on stdin, results on stdout.
process.stdout.write(JSON.stringify(runAgent(parseRequest(readFileSync(0, 'utf8')))))
