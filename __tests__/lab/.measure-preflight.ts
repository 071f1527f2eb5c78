import { readFileSync } from 'node:fs'
import { builderInputs, freshDerivation, loadLab, runMain, runPost } from './harness.js'

const lab = loadLab()
const kinds: [string, Record<string, string>][] = [
  ['shell (nixbuilder)', {}],
  [
    'authorized_keys command="nix-daemon --stdio"',
    { 'ssh-private-key': readFileSync(lab.daemonOnlyKey, 'utf8') }
  ],
  ['ForceCommand nix-daemon --stdio (nixssh)', { user: lab.daemonOnlyUser }],
  ['ForceCommand nix-store --serve --write (nixserve)', { user: lab.serveOnlyUser, protocol: 'ssh' }]
]
for (const [name, inputs] of kinds) {
  const times: number[] = []
  for (let i = 0; i < 5; i++) {
    const drv = freshDerivation(lab)
    const main = await runMain(lab, {
      ...builderInputs(lab, 'a'),
      ...inputs,
      args: drv.args,
      installables: 'drv'
    })
    await runPost(lab, main)
    if (main.code !== 0) console.log(`${name}: step failed`)
    const found = /::debug::preflight: (\d+) ms/.exec(main.stdout)
    if (found) times.push(Number(found[1]))
  }
  times.sort((x, y) => x - y)
  console.log(`${name}: preflight ${times.join(', ')} ms (median ${times[Math.floor(times.length / 2)]})`)
}
