import { mkdtempSync, writeFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import {
  builderInputs,
  chownTree,
  freshDerivation,
  hostPath,
  type Lab,
  loadLab,
  runCommandAs,
  runMain,
  runPost,
  startMainUntil,
  visibleLog
} from './harness.js'

const lab: Lab = loadLab()

/**
 * An `--impure` expression that looks for the private key wherever the runner user's evaluation can: every file that
 * NIX_SSHOPTS names, every absolute path in those files (the ssh config's IdentityFile, UserKnownHostsFile, …), every
 * file in their directories, in $HOME/.ssh and in $RUNNER_TEMP (one level down too), and in `decoy` if given. Only regular files are
 * read: reading a socket or a directory is an error `builtins.tryEval` does not catch. `probe`'s name says what it
 * found, and whether NIX_SSHOPTS named a file it could read.
 */
const PROBE = `{ nonce, system, decoy ? "" }:
let
  kindOf = path:
    if builtins.substring 0 1 path != "/" || !(builtins.pathExists path) then "missing"
    else if path == "/" then "directory"
    else (builtins.readDir (dirOf path)).\${baseNameOf path} or "missing";
  readable = path:
    let read = builtins.tryEval (if kindOf path == "regular" then builtins.readFile path else "");
    in if read.success then read.value else "";
  entries = dir:
    if kindOf dir == "directory" then map (name: "\${dir}/\${name}") (builtins.attrNames (builtins.readDir dir)) else [ ];
  words = text: builtins.filter (word: builtins.isString word && word != "") (builtins.split "[ \\t\\n\\"=]+" text);
  absolute = builtins.filter (word: builtins.substring 0 1 word == "/");
  optsFiles = absolute (words (builtins.getEnv "NIX_SSHOPTS"));
  named = builtins.concatLists (map (file: absolute (words (readable file))) optsFiles);
  home = builtins.getEnv "HOME";
  temp = builtins.getEnv "RUNNER_TEMP";
  dirs = map dirOf (optsFiles ++ named) ++ [ "\${home}/.ssh" ] ++ entries "\${home}/.ssh"
    ++ (if temp == "" then [ ] else [ temp ] ++ entries temp)
    ++ (if decoy == "" then [ ] else [ decoy ]);
  candidates = optsFiles ++ named ++ builtins.concatLists (map entries dirs);
  holdsKey = path: builtins.length (builtins.split "PRIVATE KEY" (readable path)) > 1;
  verdict = if builtins.any holdsKey candidates then "key-found" else "no-key";
  saw = if builtins.any (file: kindOf file == "regular") optsFiles then "saw-config" else "no-config";
in {
  probe = builtins.derivation {
    name = "nix-offload-test-\${nonce}-\${verdict}-\${saw}";
    inherit system;
    builder = "/bin/sh";
    args = [ "-c" "echo \${nonce} > $out" ];
  };
}
`

/** Every regular file under `dirs` on the runner, as root, that holds a private key: what a build could have read. */
async function keyFilesUnder(dirs: string[]): Promise<string> {
  const found = await runCommandAs(lab, 'root', [
    'sh',
    '-c',
    'find "$@" -type f -exec grep -l "PRIVATE KEY" {} + 2>/dev/null || true',
    'find',
    ...dirs
  ])
  return found.stdout.trim()
}

/** The probe in a fresh file of the runner's: `-f file --argstr nonce … --argstr system …`. */
function probeFile(): { args: string; nonce: string; file: string } {
  const drv = freshDerivation(lab)
  writeFileSync(hostPath(lab, drv.file), PROBE)
  return drv
}

describe('the private key and the evaluation of the runner user', () => {
  it('the probe finds a file holding a private key where it looks', async () => {
    const { file } = probeFile()
    const decoy = mkdtempSync(hostPath(lab, '/tmp/nix-offload-decoy-')).slice(lab.runner.root.length)
    writeFileSync(
      hostPath(lab, `${decoy}/id`),
      '-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n-----END OPENSSH PRIVATE KEY-----\n'
    )
    chownTree(hostPath(lab, decoy), lab.runnerUser)
    const found = await runCommandAs(lab, 'runner', [
      'nix',
      '--extra-experimental-features',
      'nix-command',
      'eval',
      '--impure',
      '--raw',
      '-f',
      file,
      'probe.name',
      '--argstr',
      'nonce',
      'control',
      '--argstr',
      'system',
      lab.localSystem,
      '--argstr',
      'decoy',
      decoy
    ])
    expect(found.code, found.stderr).toBe(0)
    expect(found.stdout).toBe('nix-offload-test-control-key-found-no-config')
  })

  it('under remote-store, an --impure expression reading every file NIX_SSHOPTS leads to finds no private key', async () => {
    // The routing evaluation runs without NIX_SSHOPTS, and may run before the step's directory exists: what the
    // probe can see then is no proof, so the test also looks itself, as root, while the build runs.
    const { args } = probeFile()
    const main = await runMain(lab, {
      ...builderInputs(lab, 'a'),
      strategy: 'remote-store',
      args: `--impure ${args}`,
      installables: 'probe'
    })
    expect(main.code, visibleLog(main)).toBe(0)
    const [outPath = ''] = main.outputs['out-paths']?.split('\n') ?? []
    expect(outPath).toMatch(/-no-key-/)
    const post = await runPost(lab, main)
    expect(post.code, post.stdout).toBe(0)
  })

  it("under remote-store, no file in the step's directory or the runner user's ~/.ssh holds the key while the build runs", async () => {
    const drv = freshDerivation(lab, { seconds: 3 })
    const step = await startMainUntil(
      lab,
      { ...builderInputs(lab, 'a'), strategy: 'remote-store', args: drv.args, installables: 'drv' },
      `building ${drv.nonce}`
    )
    // The step's own directory: RUNNER_TEMP's, or the system's when that path is too long for SSH's sockets.
    const workDir = /with (\S+)\/ssh_config\)/.exec(step.seen)?.[1] ?? ''
    expect(workDir, step.seen).toMatch(/\/nix-offload-[0-9a-f]{6}$/)
    const files = await runCommandAs(lab, 'root', ['find', workDir, '-maxdepth', '1'])
    const during = await keyFilesUnder([step.dir, workDir, `/home/${lab.runnerUser}/.ssh`])
    const main = await step.done
    expect(main.code, visibleLog(main)).toBe(0)
    // It was there, with the config and the key's public half, and no file held the key.
    expect(files.stdout).toContain(`${workDir}/ssh_config`)
    expect(files.stdout).toContain(`${workDir}/key.pub`)
    expect(during).toBe('')
    expect((await runPost(lab, main)).code).toBe(0)
  })
})
