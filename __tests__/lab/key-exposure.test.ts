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
  visibleLog
} from './harness.js'

const lab: Lab = loadLab()

/**
 * An `--impure` expression that looks for the private key wherever the runner user's evaluation can: every file that
 * NIX_SSHOPTS names, every absolute path in those files (the ssh config's IdentityFile, UserKnownHostsFile, …), every
 * file in their directories and in $HOME/.ssh (one level down too), and in `decoy` if given. Only regular files are
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
  dirs = map dirOf (optsFiles ++ named) ++ [ "\${home}/.ssh" ] ++ entries "\${home}/.ssh"
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
    const { args } = probeFile()
    const main = await runMain(lab, {
      ...builderInputs(lab, 'a'),
      strategy: 'remote-store',
      args: `--impure ${args}`,
      installables: 'probe'
    })
    expect(main.code, visibleLog(main)).toBe(0)
    const [outPath = ''] = main.outputs['out-paths']?.split('\n') ?? []
    expect(outPath).toMatch(/-no-key-saw-config$/)
    const post = await runPost(lab, main)
    expect(post.code, post.stdout).toBe(0)
  })
})
