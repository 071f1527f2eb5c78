/**
 * A source tree shaped like nixpkgs, with no inputs and no network: a library with a fixpoint, overlays and an
 * `overrideAttrs`, and one file per package under pkgs/, each defining the package and two more that nothing depends
 * on (its -doc and -tests, as most of nixpkgs is never built). The packages form layers, like the stdenv bootstrap:
 * each depends on a few of the layer below, and every package of a layer is some package's dependency, so the last
 * layer's closure is the whole graph. A few apps on top depend on the whole last layer. Evaluating a package merges
 * and rewrites its dependencies' attribute sets and strings (`features`, `configureFlags`), so evaluation does real
 * work, as nixpkgs' does.
 *
 * Outputs are `/usr/bin/head -c SIZE /dev/urandom`: they refer to no store path, so each output's closure is itself.
 * The last layer's outputs (what the apps need to build) are `inputBytes` each, the rest `bytes` each.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export interface TreeShape {
  /** Layers of packages below the apps (the depth of the graph, apps excluded). */
  layers: number
  /** Packages per layer. */
  width: number
  /** Dependencies of each package on the layer below. */
  fanIn: number
  /** Apps on top, each depending on the whole last layer: the derivations a run overrides. */
  apps: number
  /** Output size of each package of the layers below the last. */
  bytes: number
  /** Output size of each package of the last layer: the apps' inputs. */
  inputBytes: number
  /** Evaluation work per package: the length of the lists its attributes are computed from. */
  work: number
}

export const DEFAULT_SHAPE: TreeShape = {
  layers: 32,
  width: 64,
  fanIn: 3,
  apps: 3,
  bytes: 96 * 1024,
  inputBytes: 2 * 1024 * 1024,
  work: 4000
}

/** Every package's attribute name, `p<layer>_<index>`, both from 1. */
export function packageName(layer: number, index: number): string {
  return `p${layer}_${index}`
}

export function appNames(shape: TreeShape): string[] {
  return Array.from({ length: shape.apps }, (_, i) => `app${i + 1}`)
}

/** Derivations the apps' closure holds: every package of every layer, and the apps. */
export function derivationCount(shape: TreeShape): number {
  return shape.layers * shape.width + shape.apps
}

/** Output bytes of the whole graph below the apps (what the cache holds), and of the apps' inputs alone. */
export function outputBytes(shape: TreeShape): { graph: number; inputs: number } {
  const inputs = shape.width * shape.inputBytes
  return { graph: (shape.layers - 1) * shape.width * shape.bytes + inputs, inputs }
}

/**
 * The dependencies of package `index` of `layer` (> 1) on the layer below: its own index first, so that every package
 * below is someone's dependency, then spread over the layer with strides that differ per layer.
 */
export function dependencies(shape: TreeShape, layer: number, index: number): number[] {
  const picks = new Set<number>([index])
  const stride = layer * 7 + 3
  for (let k = 1; picks.size < Math.min(shape.fanIn, shape.width); k++) {
    let pick = (index - 1 + k * stride) % shape.width
    while (picks.has(pick + 1)) pick = (pick + 1) % shape.width
    picks.add(pick + 1)
  }
  return [...picks]
}

const LIB = `# The part of nixpkgs' lib the tree needs, written out so that the tree has no inputs.
rec {
  fix = f: let x = f x; in x;
  extends = overlay: f: final: let prev = f final; in prev // overlay final prev;
  foldl = builtins.foldl';
  concatMapStringsSep = sep: f: list: builtins.concatStringsSep sep (map f list);
  mapAttrs' = f: set: builtins.listToAttrs (map (n: f n set.\${n}) (builtins.attrNames set));
  genList = builtins.genList;
  # A package: a derivation with nixpkgs' overrideAttrs and passthru. features is merged from the dependencies and
  # rewritten, configureFlags rendered from it: the string and attribute-set work that dominates evaluation.
  mkPackage = { graphId, system, work }: attrs:
    let
      deps = attrs.deps or [ ];
      own = builtins.listToAttrs (genList (i: {
        name = "f\${toString (i - (i / 48) * 48)}";
        value = builtins.substring 0 12 (builtins.hashString "sha256" "\${attrs.pname}-\${toString i}");
      }) work);
      inherited = foldl (acc: d: acc // d.features) { } deps;
      features = mapAttrs' (n: v: {
        name = n;
        value = builtins.substring 0 16 (builtins.hashString "sha1" (v + (inherited.\${n} or "")));
      }) (inherited // own);
      configureFlags = concatMapStringsSep " " (n: "--with-\${n}=\${features.\${n}}") (builtins.attrNames features);
      drv = builtins.derivation {
        name = "\${graphId}-\${attrs.pname}";
        inherit system configureFlags;
        builder = "/bin/sh";
        # PATH is unset in a build: absolute paths only. The inputs are only tested, so that no output refers to
        # them. No exec before head: coreutils closes stderr (the log pipe) before it exits, and without a sandbox
        # Nix takes that for the builder's end and kills the build user's processes.
        args = [ "-c" "for d in $deps; do [ -e $d ] || exit 1; done; /usr/bin/head -c \${toString attrs.size} /dev/urandom > $out" ];
        deps = map (d: d.outPath) deps;
      };
    in
    drv // {
      inherit features attrs;
      overrideAttrs = f: mkPackage { inherit graphId system work; } (attrs // f attrs);
    };
}
`

function topLevel(id: string, shape: TreeShape): string {
  return `# The package set, as nixpkgs makes it: every file of pkgs/ imported with the final set, overlays on top.
{ system, overlays ? [ ] }:
let
  lib = import ./lib.nix;
  mkPackage = lib.mkPackage { graphId = "${id}"; inherit system; work = ${shape.work}; };
  layers = builtins.attrNames (builtins.readDir ./pkgs);
  files = builtins.concatMap
    (d: map (f: ./pkgs + "/\${d}/\${f}") (builtins.attrNames (builtins.readDir (./pkgs + "/\${d}"))))
    layers;
  base = self: lib.foldl (acc: f: acc // import f { inherit lib mkPackage; pkgs = self; }) { } files;
in
lib.fix (lib.foldl (f: overlay: lib.extends overlay f) base overlays)
`
}

function packageFile(shape: TreeShape, layer: number, index: number): string {
  const name = packageName(layer, index)
  const deps =
    layer === 1 ? [] : dependencies(shape, layer, index).map(i => `pkgs.${packageName(layer - 1, i)}`)
  const size = layer === shape.layers ? shape.inputBytes : shape.bytes
  return (
    `{ lib, mkPackage, pkgs }:\n{\n` +
    `  ${name} = mkPackage { pname = "${name}"; size = ${size}; deps = [ ${deps.join(' ')} ]; };\n` +
    `  ${name}-doc = mkPackage { pname = "${name}-doc"; size = 1024; deps = [ pkgs.${name} ]; };\n` +
    `  ${name}-tests = mkPackage { pname = "${name}-tests"; size = 1024; deps = [ pkgs.${name} pkgs.${name}-doc ]; };\n` +
    `}\n`
  )
}

function appsFile(shape: TreeShape): string {
  const last = Array.from({ length: shape.width }, (_, i) => `pkgs.${packageName(shape.layers, i + 1)}`)
  const apps = appNames(shape).map(
    app => `  ${app} = mkPackage { pname = "${app}"; size = 1048576; deps = [ ${last.join(' ')} ]; };`
  )
  return `{ lib, mkPackage, pkgs }:\n{\n${apps.join('\n')}\n}\n`
}

/** Writes the tree for graph `id` into `dir` (which must not exist yet); returns how many .nix files it wrote. */
export function writeTree(dir: string, id: string, shape: TreeShape): number {
  mkdirSync(join(dir, 'pkgs'), { recursive: true })
  writeFileSync(join(dir, 'lib.nix'), LIB)
  writeFileSync(join(dir, 'default.nix'), topLevel(id, shape))
  let files = 2
  const pad = (n: number): string => String(n).padStart(3, '0')
  for (let layer = 1; layer <= shape.layers; layer++) {
    const layerDir = join(dir, 'pkgs', `l${pad(layer)}`)
    mkdirSync(layerDir)
    for (let index = 1; index <= shape.width; index++, files++)
      writeFileSync(join(layerDir, `${packageName(layer, index)}.nix`), packageFile(shape, layer, index))
  }
  mkdirSync(join(dir, 'pkgs', 'top'))
  writeFileSync(join(dir, 'pkgs', 'top', 'apps.nix'), appsFile(shape))
  return files + 1
}

/**
 * The expression a run builds: the tree with an overlay that overrides the apps with `nonce` (in their names, so
 * that only they are new), as a workflow overrides a nixpkgs package. `treeDir` is relative to the expression's file.
 */
export function overrideExpression(treeDir: string, system: string, shape: TreeShape, nonce: string): string {
  const overrides = appNames(shape).map(
    app => `      ${app} = prev.${app}.overrideAttrs (old: { pname = "\${old.pname}-${nonce}"; });`
  )
  return (
    `let\n  pkgs = import ${treeDir} {\n    system = "${system}";\n    overlays = [ (final: prev: {\n` +
    `${overrides.join('\n')}\n    }) ];\n  };\n` +
    `in { inherit (pkgs) ${appNames(shape).join(' ')}; }\n`
  )
}

/**
 * The run's directory as a flake: `evaluate: builder` sends only flakes (a file named by `-f` may import any path of
 * the runner). It exposes `overrideExpression`'s apps, read from the `default.nix` beside it, so that the flake and the
 * file build the same derivations. It has no inputs, so it needs nothing but its own directory.
 */
export function overrideFlake(system: string): string {
  return `{\n  outputs = { self }: { packages.${system} = import ./default.nix; };\n}\n`
}

/**
 * The lock file of a flake with no inputs, as Nix computes it. Written beside flake.nix so that no Nix writes one
 * into the directory while a run reads it; an equal lock file is never rewritten.
 */
export const EMPTY_FLAKE_LOCK = '{"nodes":{"root":{}},"root":"root","version":7}\n'
