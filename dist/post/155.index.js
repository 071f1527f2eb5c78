export const id = 155;
export const ids = [155];
export const modules = {

/***/ 155:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

// ESM COMPAT FLAG
__webpack_require__.r(__webpack_exports__);

// EXPORTS
__webpack_require__.d(__webpack_exports__, {
  announcePlan: () => (/* reexport */ announcePlan),
  checkAll: () => (/* reexport */ checkAll),
  childRecorder: () => (/* reexport */ childRecorder),
  cleanup: () => (/* reexport */ cleanup),
  configureRunner: () => (/* reexport */ configureRunner),
  exportNixConfig: () => (/* reexport */ exportNixConfig),
  fileOps: () => (/* reexport */ fileOps),
  isTrustedUser: () => (/* reexport */ isTrustedUser),
  machinesFileOp: () => (/* reexport */ machinesFileOp),
  makePlan: () => (/* reexport */ makePlan),
  makeStorePlan: () => (/* reexport */ makeStorePlan),
  newToken: () => (/* reexport */ newToken),
  nixEnvironment: () => (/* reexport */ nixEnvironment),
  probeRunner: () => (/* reexport */ probeRunner),
  runnerRelease: () => (/* reexport */ runnerRelease),
  saveJournal: () => (/* reexport */ saveJournal),
  settingsForRunner: () => (/* reexport */ settingsForRunner),
  undoJournal: () => (/* reexport */ undoJournal),
  viaSudo: () => (/* reexport */ viaSudo)
});

// EXTERNAL MODULE: external "node:fs"
var external_node_fs_ = __webpack_require__(3024);
// EXTERNAL MODULE: external "node:os"
var external_node_os_ = __webpack_require__(8161);
// EXTERNAL MODULE: ./src/base/failure.ts
var failure = __webpack_require__(2571);
;// CONCATENATED MODULE: ./src/inputs/errors.ts

/** A problem with one input that the user can fix; the message names the input first. */
class InputError extends failure/* StepError */.zg {
    input;
    constructor(input, detail) {
        super(`Input '${input}': ${detail}`, `nix-offload: input ${input}`);
        this.input = input;
        this.name = 'InputError';
    }
}
/** A runner or builder state that stops the action, with the fix in the message; `topic` titles its annotation. */
class SetupError extends failure/* StepError */.zg {
    constructor(message, topic) {
        super(message, `nix-offload: ${topic}`);
        this.name = 'SetupError';
    }
}

;// CONCATENATED MODULE: ./src/nix/nix-cli.ts
/**
 * How each Nix spells the commands the action runs, and what they print. The one place that knows which release
 * renamed what, so that a runner or builder on current Nix is never asked for a deprecated alias (each prints a
 * warning from 2.19) and one on old Nix is never asked for a command it lacks.
 */


/** Runs `nix` with the features the action needs, whatever the runner's config enables. */
const NIX_FEATURES = ['--extra-experimental-features', 'nix-command flakes'];
/**
 * Reads `nix --version` (or `nix-daemon --version`): "nix (Nix) 2.34.8", "nix (Determinate Nix 3.19.0) 2.34.6",
 * "nix (Lix, like Nix) 2.93.0" or "… 2.90-beta.1". Lix 2.92+ prints more lines after the first; only the first
 * counts. The Nix version is the one after the parenthesis: Determinate Nix puts its own version inside it.
 */
function parseNixVersion(text) {
    const line = text.trim().split('\n')[0] ?? '';
    const close = line.lastIndexOf(')');
    const version = /(\d+\.\d+(?:\.\d+)?)/.exec(close >= 0 ? line.slice(close + 1) : line)?.[1] ?? '';
    const release = { implementation: /\(Lix\b/.test(line) ? 'lix' : 'nix', version };
    const determinate = /\(Determinate Nix (\d+\.\d+(?:\.\d+)?)/.exec(line)?.[1];
    if (determinate !== undefined)
        release.determinate = determinate;
    return release;
}
/** How a log line names the release: "Nix 2.34.8", "Determinate Nix 3.19.0 (Nix 2.34.6)", "Lix 2.93.0". */
function describeRelease(release) {
    const version = release.version === '' || release.version === 'unknown' ? 'of unknown version' : release.version;
    if (release.implementation === 'lix')
        return `Lix ${version}`;
    if (release.determinate !== undefined)
        return `Determinate Nix ${release.determinate} (Nix ${version})`;
    return `Nix ${version}`;
}
/** -1, 0 or 1, comparing dotted versions numerically; an unknown version sorts first. */
function compareVersions(a, b) {
    const parts = (version) => version.split('.').map(part => Number(part) || 0);
    const [x, y] = [parts(a), parts(b)];
    for (let i = 0; i < Math.max(x.length, y.length); i++) {
        const difference = (x[i] ?? 0) - (y[i] ?? 0);
        if (difference !== 0)
            return Math.sign(difference);
    }
    return 0;
}
function nixFrom(release, version) {
    return release.implementation === 'nix' && compareVersions(release.version, version) >= 0;
}
/**
 * The store check, after NIX_FEATURES. `nix store info` exists from Nix 2.19 (docs/nix.md, "Version notes"), which made
 * `nix store ping` a deprecated alias that warns; its `--json` (`{"url":…,"version":…,"trusted":…}`) is the stable
 * form to read. Older Nix and every Lix (2.90–2.95) have only `store ping`, read as text: its `--json` only exists
 * from 2.14. A version that cannot be read gets `ping`, which every Nix so far still accepts.
 */
function storeInfoArgs(release) {
    return nixFrom(release, '2.19') ? ['store', 'info', '--json'] : ['store', 'ping'];
}
/**
 * The config dump, after NIX_FEATURES. `nix config show` exists from Nix 2.20 (docs/nix.md, "Version notes") and in
 * every Lix (2.90–2.95); in both, `show-config` became a deprecated alias that warns. Nix up to 2.19 has only
 * `show-config`.
 */
function configShowArgs(release) {
    return release.implementation === 'lix' || nixFrom(release, '2.20')
        ? ['config', 'show', '--json']
        : ['show-config', '--json'];
}
/**
 * The same rule as a shell command, for a builder whose version is not known before it runs: `config show` first,
 * which Nix up to 2.19 rejects at once ("'config' is not a recognised command"), then `show-config`. Neither form
 * warns on the version that runs it.
 */
const CONFIG_SHOW_SHELL = 'nix --extra-experimental-features nix-command config show --json 2>/dev/null || nix --extra-experimental-features nix-command show-config --json 2>/dev/null';
/**
 * Reads either form. `nix store info --json` prints JSON on stdout; `trusted` is the number 1 on Debian's 2.26.3 and
 * the boolean true on 2.34.8 (seen; the source writes the same `TrustedFlag` in both), so both are accepted.
 * `nix store ping` prints "Store URL: …", "Version: …" and "Trusted: 1" on stderr.
 */
function parseStoreInfo(stdout, stderr) {
    const json = parseJsonObject(stdout);
    if (json !== undefined) {
        const info = { url: typeof json.url === 'string' ? json.url : '' };
        if (typeof json.version === 'string')
            info.version = json.version;
        if (typeof json.trusted === 'boolean')
            info.trusted = json.trusted;
        if (json.trusted === 0 || json.trusted === 1)
            info.trusted = json.trusted === 1;
        return info;
    }
    const text = `${stderr}\n${stdout}`;
    const info = { url: /Store URL:\s*(\S+)/.exec(text)?.[1] ?? '' };
    const version = /Version:\s*(\S+)/.exec(text)?.[1];
    const trusted = /Trusted:\s*([01])/.exec(text)?.[1];
    if (version !== undefined)
        info.version = version;
    if (trusted !== undefined)
        info.trusted = trusted === '1';
    return info;
}
function parseJsonObject(text) {
    if (!text.trim().startsWith('{'))
        return undefined;
    try {
        const parsed = JSON.parse(text);
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
            return undefined;
        return Object.fromEntries(Object.entries(parsed));
    }
    catch {
        return undefined;
    }
}
function parseConfigShow(json) {
    const parsed = JSON.parse(json);
    const values = {};
    if (typeof parsed !== 'object' || parsed === null)
        return values;
    for (const [name, entry] of Object.entries(parsed)) {
        // Nix 2.8–2.34 print {"name": {"value": …, …}}; some older versions print {"name": value}.
        values[name] = typeof entry === 'object' && entry !== null && 'value' in entry ? entry.value : entry;
    }
    return values;
}
/** A list setting: an array, or a space-separated string on some versions. */
function settingList(config, name) {
    const value = config[name];
    if (Array.isArray(value))
        return value.map(String);
    return typeof value === 'string' ? value.split(/\s+/).filter(Boolean) : [];
}
/**
 * Whether Nix builds every check build (`--rebuild`) itself and never hands it to the build hook: from Nix 2.34.0
 * (docs/nix.md, "Version notes": "check and repair modes operate on the state of this store specifically"). Before
 * that, and in Lix, a check build went to a builder when `max-jobs` was 0.
 */
function checksOnlyLocally(release) {
    return nixFrom(release, '2.34');
}
/**
 * Whether `nix copy` takes `--out-link` (upstream Nix 2.25, NixOS/nix#11657; Determinate Nix follows upstream; Lix
 * forked before it). `nix copy --from <store> --eval-store auto` builds its installables in that store (it realises
 * them in its source store) and copies the outputs here in the same session; the links are what names the outputs,
 * as `nix copy` prints none.
 */
function copyLinksOutputs(release) {
    return nixFrom(release, '2.25');
}
/**
 * Whether the runner's Nix breaks on the ssh config the action writes with `multiplex` (`ControlMaster auto`, a
 * `ControlPath` and `ControlPersist` in each builder's Host alias), through the build hook (ssh:// and ssh-ng://
 * machines, opened by the daemon, or by `nix` on a single-user install) and the action's own
 * `nix store info --store ssh-ng://…`, which run the same SSH code. Only releases with a reported bug and the code
 * that explains it are listed:
 *
 * - Nix 2.15.x: 2.15.0 made every ssh run `LocalCommand=echo started` and waits for that line. A session through an
 *   existing master never runs LocalCommand, so the second connection to a builder hangs for ever (NixOS/nix#8329).
 *   2.16.0 asks `ssh -O check` first. Up to 2.14 there is no such wait.
 * - Determinate Nix 3.11.0–3.21.x: 3.11.0 raised the default `max-connections` of ssh-ng stores to 64, and the build
 *   hook keeps it (it sets 1 only for ssh://), so each ssh-ng store starts its own master. Up to 3.21.1 it asks
 *   `ssh -O check` without its own socket and never reads "started" from a session, so a master on the ssh config's
 *   ControlPath (left by a plain `ssh` through the alias, or by an ssh:// store, which connects without a master of
 *   its own) makes it skip its master, and the session, becoming a master itself by `ControlMaster auto`, prints
 *   "started" into the protocol: "protocol mismatch, got 'started'" (DeterminateSystems/nix-src#441, reported on
 *   3.19.0). 3.21.2 passes `-S` with its own socket or `none`, which fixes that, but when its master has died a
 *   session re-created by `ControlMaster auto` can still leak "started" (a race); 3.22.0 replaces LocalCommand in
 *   those sessions (nix-src#569). Since 3.21.2 Nix ignores the config's ControlPath anyway, so turning multiplexing
 *   off up to 3.21.x costs nothing there.
 *
 * Not listed: upstream Nix from 2.16. NixOS/nix#14132 ("got 'started'", filed as 2.28.5) needs `max-connections`
 * above 1, which upstream's ssh-ng default and the hook never set: its reporter found it only on Determinate Nix
 * (nix-src#311) and reproduced it upstream with `?max-connections=2` (NixOS/nix#15351). NixOS/nix#10645 is
 * `ControlMaster yes`, not `auto`. Lix up to 2.92 runs upstream 2.18's code; from 2.93 it shares no connections
 * itself and tests remote builds through a `ControlMaster auto` alias. The sources of each: docs/nix.md,
 * "ControlMaster hazards".
 */
function multiplexHazard(release) {
    if (release.implementation === 'lix')
        return undefined;
    const determinate = release.determinate;
    if (determinate !== undefined && between(determinate, '3.11.0', '3.22.0')) {
        return {
            bug: 'DeterminateSystems/nix-src#441',
            reason: 'fails with "protocol mismatch, got \'started\'" on ssh-ng builders when an SSH master already runs for the ' +
                'builder',
            fixedIn: 'Determinate Nix 3.22.0'
        };
    }
    if (between(release.version, '2.15', '2.16')) {
        return {
            bug: 'NixOS/nix#8329',
            reason: 'waits for ever on every connection that goes through an existing SSH master, so builds hang',
            fixedIn: 'Nix 2.16.0'
        };
    }
    return undefined;
}
/** from <= version < to; an unknown version is in no range. */
function between(version, from, to) {
    return version !== '' && compareVersions(version, from) >= 0 && compareVersions(version, to) < 0;
}
/**
 * Printing derivations as JSON, after NIX_FEATURES: `nix derivation show` from Nix 2.15 and in Lix, which made
 * `nix show-derivation` an alias; only `show-derivation` before.
 */
function derivationShowArgs(release) {
    return release.implementation === 'lix' || nixFrom(release, '2.15')
        ? ['derivation', 'show']
        : ['show-derivation'];
}
/**
 * Reads `nix derivation show` / `show-derivation`: up to 2.33 `{"/nix/store/x.drv": {…}}` with full paths; Nix 2.34
 * `{"derivations": {"x.drv": {…}}, "version": 4}` with base names (docs/nix.md, "Version notes").
 */
function parseDerivationShow(stdout, storeDir = '/nix/store') {
    const parsed = JSON.parse(stdout);
    if (!isRecord(parsed))
        return [];
    const table = isRecord(parsed.derivations) ? parsed.derivations : parsed;
    const full = (path) => (path.startsWith('/') ? path : `${storeDir}/${path}`);
    const shown = [];
    for (const [path, value] of Object.entries(table)) {
        if (!isRecord(value) || !path.endsWith('.drv'))
            continue;
        const env = isRecord(value.env) ? value.env : {};
        const outputs = isRecord(value.outputs) ? Object.values(value.outputs) : [];
        shown.push({
            drvPath: full(path),
            system: typeof value.system === 'string' ? value.system : '',
            features: requiredFeatures(value, env),
            outputs: outputs.flatMap(output => isRecord(output) && typeof output.path === 'string' && output.path !== '' ? [full(output.path)] : [])
        });
    }
    return shown;
}
/**
 * `nix path-info --json`, after NIX_FEATURES: Nix 2.34 warns "'--json' without '--json-format' is deprecated" and
 * takes `--json-format 1` (docs/nix.md, "Building in the builder's store"); older Nix and Lix have no such option.
 */
function pathInfoJsonArgs(release) {
    return nixFrom(release, '2.34') ? ['path-info', '--json', '--json-format', '1'] : ['path-info', '--json'];
}
/**
 * What `ssh` is given for a builder's store URI (`ssh-ng://user@alias?remote-program=…` → `user@alias`), with the
 * plan's ssh config.
 */
function sshDestination(storeUri) {
    return storeUri.replace(/^[a-z-]+:\/\//, '').replace(/\?.*$/, '');
}
/** The `nix` to run on a builder over `ssh`: beside its store URI's `remote-program`, else the one on its PATH. */
function builderNix(storeUri) {
    const program = /[?&]remote-program=([^&]+)/.exec(storeUri)?.[1];
    return program === undefined ? 'nix' : nixBeside(program);
}
/**
 * The output paths at the head of a .drv file in ATerm (`Derive([("out","/nix/store/…-name","",""),…],…`), read
 * without starting `nix`. Undefined for anything else: an output with no path yet (floating content-addressed), or
 * another format; `nix derivation show` reads those.
 */
function parseDerivationOutputs(text) {
    const head = /^Derive\(\[((?:\("[^"\\]*","[^"\\]*","[^"\\]*","[^"\\]*"\),?)*)\],/.exec(text);
    if (head === null)
        return undefined;
    const paths = [...(head[1] ?? '').matchAll(/\("[^"\\]*","([^"\\]*)",/g)].map(match => match[1] ?? '');
    return paths.length > 0 && paths.every(path => path.startsWith('/')) ? paths : undefined;
}
/** Reads `nix path-info --json`: a list of objects with `path` (Nix 2.8), or an object keyed by path (later). */
function parsePathInfo(stdout) {
    const parsed = JSON.parse(stdout);
    const entries = Array.isArray(parsed)
        ? parsed.flatMap((item) => isRecord(item) && typeof item.path === 'string' ? [[item.path, item]] : [])
        : isRecord(parsed)
            ? Object.entries(parsed)
            : [];
    return entries.flatMap(([path, value]) => {
        // null (later Nix) or `"valid": false` (Nix 2.8's list): not valid in that store.
        if (!isRecord(value) || value.valid === false)
            return [];
        const info = {
            path,
            narSize: typeof value.narSize === 'number' ? value.narSize : 0,
            ultimate: value.ultimate === true
        };
        if (typeof value.deriver === 'string')
            info.deriver = value.deriver;
        if (typeof value.registrationTime === 'number')
            info.registrationTime = value.registrationTime;
        return [info];
    });
}
/**
 * `requiredSystemFeatures`: in the environment, or with `__structuredAttrs` in `env.__json` (Nix ≤ 2.33) or the
 * top-level `structuredAttrs` (2.34's v4 format); a list or a space-separated string.
 */
function requiredFeatures(drv, env) {
    let structured = drv.structuredAttrs;
    if (!isRecord(structured) && typeof env.__json === 'string') {
        try {
            structured = JSON.parse(env.__json);
        }
        catch {
            structured = undefined;
        }
    }
    const value = isRecord(structured) ? structured.requiredSystemFeatures : env.requiredSystemFeatures;
    if (Array.isArray(value))
        return value.filter((item) => typeof item === 'string');
    return typeof value === 'string' ? value.split(/\s+/).filter(Boolean) : [];
}

// EXTERNAL MODULE: ./src/base/process.ts
var base_process = __webpack_require__(1524);
;// CONCATENATED MODULE: ./src/runner/probe.ts





/**
 * The probe asks the local Nix and the user database only: most of a minute without an answer is a hung daemon, not
 * a slow one (the stop's grace and the pipes' drain keep the whole under a minute).
 */
const PROBE_TIMEOUT_MS = 50_000;
async function probeRunner(env = process.env) {
    const user = (0,external_node_os_.userInfo)();
    const isRoot = user.uid === 0;
    const [nix, groups, rootHome] = await Promise.all([
        askNix(env),
        isRoot ? Promise.resolve([]) : groupsOf(user.username),
        homeOf('root')
    ]);
    const { release, storeCheck, config } = nix;
    const store = /^(daemon|unix:)/.test(storeCheck.url) ? 'daemon' : 'local';
    const system = settingString(config, 'system');
    let trusted = true;
    if (store === 'daemon' && !isRoot) {
        trusted = storeCheck.trusted ?? isTrustedUser(user.username, groups, settingList(config, 'trusted-users'));
    }
    const facts = {
        nixVersion: release.version || 'unknown',
        nixImplementation: release.implementation,
        system,
        store,
        userName: user.username,
        isRoot,
        trusted,
        daemonBuilders: settingString(config, 'builders'),
        daemonBuildersUseSubstitutes: config['builders-use-substitutes'] === true,
        serviceManager: detectServiceManager(),
        sshHome: store === 'daemon' ? rootHome : user.homedir,
        nixPath: findOnPath('nix', env.PATH ?? '') ?? 'nix'
    };
    if (release.determinate !== undefined)
        facts.determinateVersion = release.determinate;
    return facts;
}
/**
 * Whether root's changes (a plan's or a journal's `asRoot`) go through sudo: unless this process is root already.
 * The one place that decides it: the plan's batch, its store check and the post step's undo all ask it.
 */
function viaSudo(owner) {
    return owner.asRoot && process.getuid?.() !== 0;
}
/** The runner's Nix as the version rules in src/nix/nix-cli.ts take it. */
function runnerRelease(facts) {
    const release = { implementation: facts.nixImplementation, version: facts.nixVersion };
    if (facts.determinateVersion !== undefined)
        release.determinate = facts.determinateVersion;
    return release;
}
/**
 * `nix --version` first, because it decides how the other two questions are spelled (src/nix/nix-cli.ts); then the store
 * check and the daemon's config at once. `--version` opens no store, so asking it first costs the probe little;
 * asking the new spellings while it runs would cost Nix before 2.19 more, as both fail there and are asked again
 * (bench/README.md, "Figures behind choices in the code").
 */
async function askNix(env) {
    const release = parseNixVersion(await nixOutput(['--version'], env));
    // The daemon reads /etc/nix/nix.conf only: leave out what this process alone sees (NIX_CONFIG, user config).
    const daemonView = { ...env, NIX_USER_CONF_FILES: '' };
    delete daemonView.NIX_CONFIG;
    const checkArgs = storeInfoArgs(release);
    const [check, configText] = await Promise.all([
        (0,base_process/* runCommand */.d1)('nix', [...NIX_FEATURES, ...checkArgs], { env, timeoutMs: PROBE_TIMEOUT_MS }),
        nixOutput([...NIX_FEATURES, ...configShowArgs(release)], daemonView)
    ]);
    if (check.code !== 0) {
        throw new SetupError(`Cannot reach the runner's Nix store (\`nix ${checkArgs.join(' ')}\` failed: ${lastLine(check.stderr)}). ` +
            'Is Nix installed and, on a multi-user install, is the nix-daemon running?', 'runner');
    }
    return {
        release,
        storeCheck: parseStoreInfo(check.stdout.toString(), check.stderr),
        config: parseConfigShow(configText)
    };
}
/** Nix's rule in `nix-daemon`: a user is trusted if named, if in a named @group, or if `*` is listed. */
function isTrustedUser(user, groups, trustedUsers) {
    return trustedUsers.some(entry => entry === '*' || entry === user || (entry.startsWith('@') && groups.includes(entry.slice(1))));
}
function settingString(config, name) {
    const value = config[name];
    return typeof value === 'string' ? value : Array.isArray(value) ? value.join(' ') : String(value ?? '');
}
function findOnPath(program, path) {
    for (const directory of path.split(':')) {
        if (directory === '')
            continue;
        const candidate = `${directory}/${program}`;
        try {
            (0,external_node_fs_.accessSync)(candidate, external_node_fs_.constants.X_OK);
            return candidate;
        }
        catch {
            // not here; try the next directory
        }
    }
    return undefined;
}
function detectServiceManager() {
    if (process.platform === 'darwin')
        return 'launchd';
    return (0,external_node_fs_.existsSync)('/run/systemd/system') ? 'systemd' : 'none';
}
async function nixOutput(args, env) {
    let result;
    try {
        result = await (0,base_process/* runCommand */.d1)('nix', args, { env, timeoutMs: PROBE_TIMEOUT_MS });
    }
    catch {
        throw new SetupError('Nix is not installed on the runner (no `nix` on PATH): install it in an earlier step.', 'runner');
    }
    if (result.code !== 0)
        throw new SetupError(`\`nix ${args.join(' ')}\` failed: ${lastLine(result.stderr)}`, 'runner');
    return result.stdout.toString();
}
/** The output of a question to the system (the user database), or a SetupError saying which one hung. */
async function askSystem(command, args, question) {
    const { env = process.env, timeoutMs = PROBE_TIMEOUT_MS } = question;
    const result = await (0,base_process/* runCommand */.d1)(command, args, { env, timeoutMs });
    if (result.timedOut === true) {
        throw new SetupError(`\`${[command, ...args].join(' ')}\` hung: no answer within ${timeoutMs / 1000} s. The runner's user database ` +
            '(NSS: LDAP, SSSD) is not answering; fix it or use a runner whose accounts are local.', 'runner');
    }
    return result.stdout.toString();
}
async function groupsOf(user, question = {}) {
    const groups = await askSystem('id', ['-Gn', user], question);
    return groups.trim().split(/\s+/).filter(Boolean);
}
/** The home directory from the user database, which is what ssh reads its config from (not $HOME). */
async function homeOf(user, question = {}) {
    const home = (await askSystem('sh', ['-c', `echo ~${user}`], question)).trim();
    if (!home.startsWith('/'))
        throw new SetupError(`Cannot find the home directory of ${user}.`, 'runner');
    return home;
}
function lastLine(text) {
    return text.trim().split('\n').pop() ?? '';
}

// EXTERNAL MODULE: ./src/inputs/constants.ts
var constants = __webpack_require__(1068);
// EXTERNAL MODULE: ./node_modules/@actions/core/lib/core.js + 11 modules
var core = __webpack_require__(1659);
;// CONCATENATED MODULE: ./src/inputs/builder.ts

/**
 * A builder's free capacity: cores / (1 + busy), where busy is the load average, or the running builds when more (a
 * build just started has not raised the load average yet). Undefined when the cores or both figures are unknown.
 */
function freeCapacity(load) {
    if (load?.cores === undefined)
        return undefined;
    const { loadAverage, runningBuilds } = load;
    if (loadAverage === undefined && runningBuilds === undefined)
        return undefined;
    return load.cores / (1 + Math.max(loadAverage ?? 0, runningBuilds ?? 0));
}
/**
 * Each builder's free capacity, a builder whose load is unknown taking the mean of the known ones: it is neither
 * preferred nor passed over. Undefined when no builder's load is known.
 */
function capacities(builders) {
    const known = builders.map(builder => freeCapacity(builder.load));
    const figures = known.filter(value => value !== undefined);
    if (figures.length === 0)
        return undefined;
    const neutral = figures.reduce((sum, value) => sum + value, 0) / figures.length;
    return known.map(value => value ?? neutral);
}
/**
 * The speed-factors the machines file gives the builders, so that Nix's scheduler (which prefers the machine with the
 * least of its own jobs per speed-factor) prefers a builder with more free capacity: each configured speed-factor
 * times ten times its builder's free capacity, as a whole number of at least 1 (what every Nix parses). As configured
 * with one builder, or when no builder's load is known.
 */
function loadedSpeedFactors(builders) {
    const free = builders.length > 1 ? capacities(builders) : undefined;
    return builders.map((builder, index) => {
        const capacity = free?.[index];
        return capacity === undefined
            ? builder.speedFactor
            : Math.max(1, Math.round(builder.speedFactor * 10 * capacity));
    });
}
/**
 * The builders in the order they should be tried, the one with the most free capacity first (in tenths, as the
 * machines file has it: a difference the load average's noise makes keeps the given order).
 */
function byFreeCapacity(builders) {
    const free = capacities(builders);
    if (free === undefined)
        return [...builders];
    const tenths = free.map(value => Math.round(value * 10));
    return builders
        .map((builder, index) => ({ builder, rank: tenths[index] ?? 0 }))
        .sort((a, b) => b.rank - a.rank)
        .map(entry => entry.builder);
}
/** The builders as given, when none leaves a value for the preflight to detect (`auto`); otherwise undefined. */
function givenBuilders(requests) {
    const builders = [];
    for (const request of requests) {
        const { systems, maxJobs, supportedFeatures } = request;
        if (systems === AUTO || maxJobs === AUTO || supportedFeatures === AUTO)
            return undefined;
        builders.push(builderWith(request, systems, maxJobs, supportedFeatures));
    }
    return builders;
}
/** The builder a request describes, with these values in place of `auto` (each system once). */
function builderWith(request, systems, maxJobs, supportedFeatures) {
    return { ...request, systems: [...new Set(systems)], maxJobs, supportedFeatures };
}
/** host:port, with an IPv6 address in brackets. */
function hostPort(builder) {
    return builder.host.includes(':') ? `[${builder.host}]:${builder.port}` : `${builder.host}:${builder.port}`;
}
/** How users know a builder: user@host:port. */
function label(builder) {
    return `${builder.user}@${hostPort(builder)}`;
}
/** The records of the run `token`'s builders, in order: the `index`th is reached as `nix-offload-<token>-<index+1>`. */
function configureBuilders(builders, token) {
    return builders.map((builder, index) => {
        const alias = `nix-offload-${token}-${index + 1}`;
        return { ...builder, alias, storeUri: storeUriOf(builder, alias) };
    });
}
/**
 * The builder's store as Nix is given it everywhere (machines file, `--store`, `nix copy --from`), and as Nix names
 * the machine in its log: the `remote-program` setting rides in the query, which Nix keeps in that name.
 */
function storeUriOf(builder, alias) {
    const uri = `${builder.protocol}://${builder.user}@${alias}`;
    return builder.remoteProgram === undefined ? uri : `${uri}?remote-program=${builder.remoteProgram}`;
}
/**
 * The configured builder a machine name from Nix's log names (the ledger keeps the name Nix printed; '' is the
 * runner). Nix's build lines name the store with its URI's settings, its connection errors without them.
 */
function builderNamed(builders, machine) {
    if (machine === undefined || machine === '')
        return undefined;
    const withoutSettings = (uri) => uri.replace(/\?.*$/, '');
    return (builders.find(builder => builder.storeUri === machine) ??
        builders.find(builder => withoutSettings(builder.storeUri) === withoutSettings(machine)));
}

// EXTERNAL MODULE: external "node:crypto"
var external_node_crypto_ = __webpack_require__(7598);
// EXTERNAL MODULE: ./node_modules/ssh2/lib/index.js
var lib = __webpack_require__(5472);
;// CONCATENATED MODULE: ./src/inputs/keys.ts


/** Key types OpenSSH accepts in known_hosts and .pub files. */
const HOST_KEY_TYPES = new Set([
    'ssh-ed25519',
    'ssh-rsa',
    'ecdsa-sha2-nistp256',
    'ecdsa-sha2-nistp384',
    'ecdsa-sha2-nistp521',
    'sk-ssh-ed25519@openssh.com',
    'sk-ecdsa-sha2-nistp256@openssh.com'
]);
/** Returns a reason the text is not a usable private key, without ever quoting it. */
function parsePrivateKey(raw) {
    // What a paste adds around the lines (CRLF, indentation from YAML, trailing spaces) is not part of the key: OpenSSH
    // reads such a file once each line is trimmed, so the action trims them too.
    const lines = raw
        .replace(/\r\n?/g, '\n')
        .split('\n')
        .map(line => line.trim());
    const text = lines.join('\n').trim() + '\n';
    if (!/^-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----\n/.test(text)) {
        const first = text.split('\n')[0] ?? '';
        // The first line is shown only when it is armour: a base64 line would be part of the secret.
        const found = first.startsWith('-----')
            ? `its first line is "${first.slice(0, 60)}"`
            : 'its first line is not a BEGIN line';
        return `is not a private key: expected the whole file, starting with "-----BEGIN OPENSSH PRIVATE KEY-----"; ${found}`;
    }
    if (!/\n-----END [A-Z0-9 ]*PRIVATE KEY-----\n$/.test(text)) {
        return 'is cut short: its last line should be "-----END OPENSSH PRIVATE KEY-----" (was the secret pasted whole?)';
    }
    const parsed = ssh2.utils.parseKey(text);
    const key = Array.isArray(parsed) ? parsed[0] : parsed;
    if (key instanceof Error || key === undefined) {
        const reason = key instanceof Error ? key.message : '';
        if (/passphrase|encrypted/i.test(reason)) {
            return 'is protected by a passphrase; the nix-daemon cannot type one. Use a key without a passphrase (ssh-keygen -N "")';
        }
        return 'could not be read as an SSH private key (was the secret pasted whole, with its BEGIN and END lines?)';
    }
    if (!key.isPrivateKey())
        return 'holds a public key; give the private key';
    return { text, type: key.type, publicLine: `${key.type} ${key.getPublicSSH().toString('base64')}` };
}
/** Reads `type base64 [comment]`, as in a .pub file. Returns a reason on failure. */
function parseHostKey(typeToken, blobToken) {
    if (!HOST_KEY_TYPES.has(typeToken)) {
        return `"${typeToken.slice(0, 40)}" is not an SSH host key type (expected one of ${[...HOST_KEY_TYPES].join(', ')})`;
    }
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(blobToken))
        return 'the key is not base64';
    const parsed = ssh2.utils.parseKey(`${typeToken} ${blobToken}`);
    const key = Array.isArray(parsed) ? parsed[0] : parsed;
    if (key instanceof Error || key === undefined || key.type !== typeToken) {
        return `the base64 part is not a valid ${typeToken} key`;
    }
    return { type: typeToken, blob: blobToken };
}
/** `SHA256:…` as `ssh-keygen -lf` prints it. */
function fingerprint(key) {
    const digest = createHash('sha256').update(Buffer.from(key.blob, 'base64')).digest('base64');
    return `SHA256:${digest.replace(/=+$/, '')}`;
}
/** The host field of a known_hosts line for this address, as ssh looks it up. */
function knownHostsName(host, port) {
    return port === 22 ? host : `[${host}]:${port}`;
}
const HOST_PATTERNS = /^[A-Za-z0-9.\-_:[\]*?!,]+$/;
const HASHED_HOST = /^\|1\|[A-Za-z0-9+/]+=*\|[A-Za-z0-9+/]+=*$/;
/** Parses one known_hosts line; returns a reason on failure. The comment is dropped. */
function parseKnownHostsLine(line) {
    const tokens = line.trim().split(/[ \t]+/);
    let marker;
    if (tokens[0] === '@cert-authority' || tokens[0] === '@revoked') {
        marker = tokens[0];
        tokens.shift();
    }
    const [hosts, type, blob] = tokens;
    if (hosts === undefined || type === undefined || blob === undefined) {
        return 'expected "host key-type base64-key", e.g. "[builder.example.com]:2222 ssh-ed25519 AAAA…"';
    }
    if (!HOST_PATTERNS.test(hosts) && !HASHED_HOST.test(hosts)) {
        return `"${hosts.slice(0, 60)}" is not a known_hosts host pattern`;
    }
    const key = parseHostKey(type, blob);
    if (typeof key === 'string')
        return key;
    return marker === undefined ? { hosts, key } : { marker, hosts, key };
}
function renderKnownHostsLine(line) {
    return [line.marker, line.hosts, line.key.type, line.key.blob].filter(Boolean).join(' ');
}
/** Whether a known_hosts line would be consulted for this host and port (plain, wildcard or hashed entries). */
function knownHostsLineMatches(line, host, port) {
    if (line.marker === '@revoked')
        return false;
    const name = knownHostsName(host, port);
    if (HASHED_HOST.test(line.hosts)) {
        const [, , salt = '', hash = ''] = line.hosts.split('|');
        const digest = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
        return digest === hash;
    }
    let matched = false;
    for (const pattern of line.hosts.split(',')) {
        const negated = pattern.startsWith('!');
        const glob = negated ? pattern.slice(1) : pattern;
        if (globMatches(glob, name)) {
            if (negated)
                return false;
            matched = true;
        }
    }
    return matched;
}
function globMatches(glob, name) {
    const source = glob
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.');
    return new RegExp(`^${source}$`, 'i').test(name);
}

// EXTERNAL MODULE: external "node:path"
var external_node_path_ = __webpack_require__(6760);
// EXTERNAL MODULE: ./src/base/json.ts
var json = __webpack_require__(3659);
// EXTERNAL MODULE: ./src/base/processes.ts
var processes = __webpack_require__(8184);
;// CONCATENATED MODULE: ./src/runner/state.ts




/** The only commands the undo runs as root besides its file operations: one per service manager. */
const RESTART_COMMANDS = {
    systemd: ['systemctl', 'restart', 'nix-daemon.service'],
    launchd: ['launchctl', 'kickstart', '-k', 'system/org.nixos.nix-daemon']
};
/** Saved after every change, so a main step that dies half-way still leaves the post step a complete record. */
function saveJournal(journal) {
    core/* saveState */.LZ(constants/* StateKey */.zv.Journal, JSON.stringify(journal));
}
/**
 * The journal main saved, checked field by field (checkJournal); undefined when it saved none. Throws, saying why,
 * when the state is not a journal main could have written.
 */
function loadJournal(sharedFiles) {
    const text = core/* getState */.Gu(constants/* StateKey */.zv.Journal);
    if (text === '')
        return undefined;
    let parsed;
    try {
        parsed = JSON.parse(text);
    }
    catch {
        throw new Error('it is not JSON');
    }
    return checkJournal(parsed, sharedFiles);
}
/**
 * The state is input: any process of the job can append to GITHUB_STATE, and a build log's `save-state` line once
 * could. So the post step, which runs the undo as root, takes only a journal whose every entry main could have
 * written for one job: one 128-bit token, its work directory `<absolute dir>/nix-offload-<token>` (whatever else
 * the path names, root then removes nothing but a directory of that name), blocks of that token in the shared files
 * only, a restart named from RESTART_COMMANDS beside nix.conf only, and that token's aliases. One entry that is not
 * voids the journal: the rest came from the same untrusted text.
 */
function checkJournal(value, sharedFiles) {
    if (!(0,json/* isRecord */.u)(value) || !hasOnly(value, ['asRoot', 'token', 'undo']))
        throw new Error('it is not a journal');
    const { asRoot, token, undo } = value;
    if (typeof asRoot !== 'boolean' || !Array.isArray(undo))
        throw new Error('it is not a journal');
    if (undo.length === 0)
        return { asRoot, undo: [] };
    if (typeof token !== 'string' || !TOKEN.test(token))
        throw new Error('it has no valid token');
    const checked = undo.map((entry) => checkUndo(entry, { token, sharedFiles }));
    return { asRoot, token, undo: checked };
}
/** 128 random bits, in lowercase hex: what names every file and alias of one job. */
const TOKEN = /^[0-9a-f]{32}$/;
function checkUndo(entry, job) {
    const { token, sharedFiles } = job;
    if (!(0,json/* isRecord */.u)(entry))
        throw new Error('an entry is not an object');
    if (entry.kind === 'remove-tree' && hasOnly(entry, ['kind', 'path'])) {
        return { kind: 'remove-tree', path: workDir(entry.path, token) };
    }
    if (entry.kind === 'remove-block' && hasOnly(entry, ['kind', 'path', 'token', 'at', 'restart'])) {
        const { at, restart } = entry;
        const path = blockFile(entry.path, sharedFiles);
        if (entry.token !== token)
            throw new Error(`the block in ${path} is not this job's`);
        if (at !== 'top' && at !== 'end')
            throw new Error(`the block in ${path} has no place`);
        if (restart === undefined)
            return { kind: 'remove-block', path, token, at };
        if ((restart !== 'systemd' && restart !== 'launchd') || path !== sharedFiles.nixConf)
            throw new Error(`the block in ${path} asks for a restart main never asks for`);
        return { kind: 'remove-block', path, token, at, restart };
    }
    if (entry.kind === 'stop-key-agent' && hasOnly(entry, ['kind', 'socket'])) {
        const socket = cleanPath(entry.socket);
        if (socket !== `${workDir(socket.slice(0, socket.lastIndexOf('/')), token)}/agent`)
            throw new Error('the key agent listens outside the work directory');
        return { kind: 'stop-key-agent', socket };
    }
    if (entry.kind === 'close-ssh-masters' && hasOnly(entry, ['kind', 'aliases', 'path', 'configFile'])) {
        const path = workDir(entry.path, token);
        const { aliases, configFile } = entry;
        const alias = new RegExp(`^nix-offload-${token}-[1-9][0-9]{0,3}$`);
        if (!Array.isArray(aliases) || !aliases.every(name => typeof name === 'string' && alias.test(name)))
            throw new Error('the SSH masters have aliases that are not its own');
        if (configFile !== undefined && configFile !== `${path}/ssh_config`)
            throw new Error('the SSH masters have an ssh config outside the work directory');
        const undo = { kind: 'close-ssh-masters', aliases: aliases.map(String), path };
        return configFile === undefined ? undo : { ...undo, configFile };
    }
    throw new Error(`an entry of kind ${JSON.stringify(entry.kind)} (or its fields) is not one main writes`);
}
function hasOnly(entry, fields) {
    return Object.keys(entry).every(field => fields.includes(field));
}
/** An absolute path, with no `.` or `..` step, no doubled or trailing slash, and no control character. */
function cleanPath(path) {
    if (typeof path !== 'string' ||
        !path.startsWith('/') ||
        path.endsWith('/') ||
        external_node_path_.posix.normalize(path) !== path ||
        path.split('/').includes('..') ||
        [...path].some(char => char.charCodeAt(0) < 0x20 || char.charCodeAt(0) === 0x7f))
        throw new Error(`${JSON.stringify(path)} is not an absolute, normalized path`);
    return path;
}
/**
 * A job's own directory, `<absolute dir>/nix-offload-<the token's first 6 hex digits>` (work-dir.ts
 * `workDirIn`: the full token would make its SSH control sockets' paths too long).
 */
function workDir(value, token) {
    const path = cleanPath(value);
    if (!path.endsWith(`/nix-offload-${token.slice(0, 6)}`) || path.lastIndexOf('/') === 0)
        throw new Error(`${path} is not a work directory of this job's`);
    return path;
}
/** A file jobs share a block in: an `.ssh/config`, or one of Nix's (SharedFiles). */
function blockFile(value, sharedFiles) {
    const path = cleanPath(value);
    if (path.endsWith('/.ssh/config') || path === sharedFiles.nixConf || sharedFiles.machines.includes(path))
        return path;
    throw new Error(`${path} is not a file the action puts a block in`);
}
/**
 * Records, in the state, each tracked child of main while it runs (base/process.ts), so that the post step can stop
 * those a killed main left behind. A child that ends is taken off the record again.
 */
function childRecorder() {
    const running = new Map();
    const ended = new Set();
    const save = () => core/* saveState */.LZ(constants/* StateKey */.zv.Children, JSON.stringify([...running.values()]));
    return {
        started: (pid, label) => {
            ended.delete(pid);
            void (0,processes/* startTimeOf */.P)(pid).then(start => {
                if (start === undefined || ended.has(pid))
                    return;
                running.set(pid, { pid, start, label });
                save();
            });
        },
        ended: pid => {
            ended.add(pid);
            if (running.delete(pid))
                save();
        }
    };
}
/** The processes main recorded as running, checked: throws, saying why, when the state is not such a record. */
function loadChildren() {
    const text = core/* getState */.Gu(constants/* StateKey */.zv.Children);
    if (text === '')
        return [];
    let parsed;
    try {
        parsed = JSON.parse(text);
    }
    catch {
        throw new Error('it is not JSON');
    }
    if (!Array.isArray(parsed) || parsed.length > 64)
        throw new Error('it is not a list of processes');
    return parsed.map((entry) => {
        if (!(0,json/* isRecord */.u)(entry) || !hasOnly(entry, ['pid', 'start', 'label']))
            throw new Error('an entry is not a process');
        const { pid, start, label } = entry;
        // The label reaches the log: plain words only, no workflow command.
        if (typeof pid !== 'number' ||
            !Number.isSafeInteger(pid) ||
            pid <= 1 ||
            typeof start !== 'string' ||
            !/^[\w: ]{1,40}$/.test(start) ||
            typeof label !== 'string' ||
            !/^[a-z][a-z -]{0,39}$/.test(label))
            throw new Error('an entry is not a process main records');
        return { pid, start, label };
    });
}

;// CONCATENATED MODULE: ./src/runner/ssh-config.ts


/** The ssh config block, at the top of `sshDir`/config, for a daemon's root or a single-user install's user. */
function sshConfigBlock(sshDir, token, builders, files) {
    const content = renderSshConfig(token, builders, files);
    return { kind: 'block', path: `${sshDir}/config`, mode: 0o600, at: 'top', content };
}
/** The ssh config as a file of the remote-store plan's own, given to its `nix` with NIX_SSHOPTS (nixEnvironment). */
function sshConfigFile(path, token, builders, files) {
    return { kind: 'write', path, mode: 0o600, content: renderSshConfig(token, builders, files) };
}
/** The known_hosts file the ssh config pins, in the work directory. */
function knownHostsFile(settings, files) {
    return {
        kind: 'write',
        path: files.knownHostsFile,
        mode: 0o644,
        content: renderKnownHosts(settings.knownHosts)
    };
}
/**
 * The block put at the top of the connecting user's ~/.ssh/config (ssh takes the first value it reads for each
 * option, so the top is the only place the pinned settings are sure to win). It ends with `Host *` so that options the
 * user had written before any Host line keep applying to every host.
 */
function renderSshConfig(token, builders, files) {
    const lines = [beginMarker(token)];
    for (const builder of builders) {
        lines.push(`Host ${builder.alias}`, `  HostName ${builder.host}`, `  Port ${builder.port}`, `  User ${builder.user}`, `  IdentityFile "${files.identityFile}"`, ...(files.identityAgent === undefined ? [] : [`  IdentityAgent "${files.identityAgent}"`]), '  IdentitiesOnly yes', `  UserKnownHostsFile "${files.knownHostsFile}"`, '  StrictHostKeyChecking yes', '  BatchMode yes', '  ConnectTimeout 10', '  ServerAliveInterval 15', '  ServerAliveCountMax 4', ...multiplexLines(files));
    }
    lines.push('Host *', endMarker(token));
    return lines.join('\n') + '\n';
}
/**
 * Nix opens a connection per derivation and never shares one (docs/nix.md, "ControlMaster hazards"): the master
 * does, for every session. Pinned either way: a `Host *` of the runner's own (ControlMaster yes, say) must not decide
 * for the alias, or a master nobody closes outlives the job, and Nix meets "got 'started'" or hangs on `ssh -O check`.
 */
function multiplexLines(files) {
    if (files.controlPath === undefined)
        return ['  ControlMaster no', '  ControlPath none'];
    const persist = files.ownMaster === true ? 'no' : '600';
    return ['  ControlMaster auto', `  ControlPath "${files.controlPath}"`, `  ControlPersist ${persist}`];
}
function renderKnownHosts(lines) {
    return lines.map(renderKnownHostsLine).join('\n') + '\n';
}
/** Lines between this job's markers, as a block of a shared file. */
function markedBlock(token, lines) {
    return `${beginMarker(token)}\n${lines}${endMarker(token)}\n`;
}
/**
 * The file agent finds a job's block by these marker lines (agent/). No `;` in them: Nix splits a machines file on it
 * before it drops comments.
 */
function beginMarker(token) {
    return `# ${constants/* MARKER */.tl} ${token}: begin (added by the nix-offload action, whose post step removes it)`;
}
function endMarker(token) {
    return `# ${constants/* MARKER */.tl} ${token}: end`;
}
/** A block's file operation, and its undo: this job's block out again, the daemon restarted as it was for it. */
function blockChange(step, token) {
    const restart = step.restart === undefined ? undefined : restartOf(step.restart);
    const block = { path: step.path, token, at: step.at };
    return {
        op: {
            op: 'add-block',
            ...block,
            text: step.content,
            mode: step.mode,
            ...(restart === undefined ? {} : { restart: [...RESTART_COMMANDS[restart]] })
        },
        undo: { kind: 'remove-block', ...block, ...(restart === undefined ? {} : { restart }) }
    };
}
/** The file operation that takes a block back; it checks that none of this job's is left, and counts others'. */
function blockUndoOp(undo) {
    return {
        op: 'remove-block',
        path: undo.path,
        token: undo.token,
        at: undo.at,
        ...(undo.restart === undefined ? {} : { restart: [...RESTART_COMMANDS[undo.restart]] })
    };
}
/** The daemon reads nix.conf only when it starts: the file agent restarts it, as root, with this manager's command. */
function restartOf(manager) {
    if (manager === 'none')
        throw new Error('no service manager to restart the nix-daemon with');
    return manager;
}

;// CONCATENATED MODULE: ./src/runner/nix-config.ts




const NIX_CONF = '/etc/nix/nix.conf';
/** The daemon's machines file when its nix.conf names none: shared by the jobs on the runner, one block each. */
const SHARED_MACHINES = '/etc/nix/nix-offload.machines';
/** Nix's `builders` when nix.conf sets none: `@` and this file, in the configuration directory /etc/nix. */
const DEFAULT_MACHINES = '/etc/nix/machines';
/** `ownMachinesFile`: in the work directory, for a Nix that takes the client's `builders`. */
function nixConfigFor(job) {
    const { settings, facts, builders, ownMachinesFile } = job;
    if (facts.store === 'local' || facts.trusted) {
        return {
            path: facts.store === 'local' ? 'single-user' : 'trusted-client',
            steps: [{ kind: 'write', path: ownMachinesFile, mode: 0o644, content: renderMachines(builders) }],
            machinesFile: ownMachinesFile,
            nixConfig: renderNixSettings(ownMachinesFile, settings.buildersUseSubstitutes),
            warnings: []
        };
    }
    return daemonConfigFor(job);
}
/** The daemon ignores this client's settings: a block in its machines file, and in its nix.conf if that must change. */
function daemonConfigFor(job) {
    const { settings, facts, token } = job;
    const daemonMachinesFile = /^@(\/\S+)$/.exec(facts.daemonBuilders.trim())?.[1];
    const substitutesMissing = settings.buildersUseSubstitutes && !facts.daemonBuildersUseSubstitutes;
    const machinesFile = daemonMachinesFile ?? SHARED_MACHINES;
    const machines = machinesBlock(machinesFile, token, job.builders);
    const common = { machinesFile, nixConfig: '' };
    if (daemonMachinesFile !== undefined && !(substitutesMissing && facts.serviceManager !== 'none')) {
        const warnings = substitutesMissing ? [substitutesNotApplied(facts)] : [];
        return { path: 'machines-file', steps: [machines], ...common, warnings };
    }
    if (facts.serviceManager === 'none')
        throw new SetupError(untrustedWithoutRestartMessage(facts), 'runner');
    const settingsText = renderNixSettings(daemonMachinesFile === undefined ? SHARED_MACHINES : undefined, substitutesMissing);
    const nixConf = {
        kind: 'block',
        path: NIX_CONF,
        mode: 0o644,
        at: 'end',
        content: renderNixConfBlock(token, settingsText),
        restart: facts.serviceManager
    };
    return { path: 'daemon-config', steps: [machines, nixConf], ...common, warnings: [] };
}
/** This job's block in a machines file that other jobs share: Nix takes `#` to the end of a line as a comment. */
function machinesBlock(path, token, builders) {
    return { kind: 'block', path, mode: 0o644, at: 'end', content: renderMachinesBlock(token, builders) };
}
/**
 * Rewrites the plan's machines file to name `builders` only (the canary, one builder at a time): this job's block
 * in a shared machines file, or the whole file of its own.
 */
function machinesFileOp(plan, builders) {
    if (plan.machinesShared)
        return {
            op: 'set-block',
            path: plan.machinesFile,
            token: plan.token,
            text: renderMachinesBlock(plan.token, builders)
        };
    return {
        op: 'overwrite',
        path: plan.machinesFile,
        data: Buffer.from(renderMachines(builders)).toString('base64')
    };
}
/**
 * The Nix machines file. A port in the URI only works from Nix 2.31 and field 8 (base64 host key) is written without
 * `[host]:port`, so the port and the pinned key live in the ssh Host alias instead (docs/nix.md, "The machines
 * format").
 */
function renderMachines(builders) {
    const speedFactors = loadedSpeedFactors(builders);
    return (builders
        .map((builder, index) => renderMachineLine({ ...builder, speedFactor: speedFactors[index] ?? 1 }))
        .join('\n') + '\n');
}
/** The machines lines as this job's marked block, in a machines file other jobs share. */
function renderMachinesBlock(token, builders) {
    return markedBlock(token, renderMachines(builders));
}
function renderMachineLine(builder) {
    const list = (items) => (items.length === 0 ? '-' : items.join(','));
    return [
        builder.storeUri,
        list(builder.systems),
        '-',
        String(builder.maxJobs),
        String(builder.speedFactor),
        list(builder.supportedFeatures),
        list(builder.mandatoryFeatures),
        '-'
    ].join(' ');
}
/** Settings the action gives Nix, as nix.conf / NIX_CONFIG lines. */
function renderNixSettings(machinesFile, buildersUseSubstitutes) {
    const lines = [];
    if (machinesFile !== undefined)
        lines.push(`builders = @${machinesFile}`);
    if (buildersUseSubstitutes)
        lines.push('builders-use-substitutes = true');
    return lines.join('\n');
}
/** Appended to nix.conf: later lines override earlier ones there. */
function renderNixConfBlock(token, settings) {
    return markedBlock(token, `${settings}\n`);
}
/** Exports NIX_CONFIG with the plan's settings (trusted-client path) to this step's builds and to later steps. */
function exportNixConfig(plan) {
    if (plan.nixConfig === '')
        return;
    const existing = process.env.NIX_CONFIG ?? '';
    core/* exportVariable */.dN('NIX_CONFIG', existing === '' ? plan.nixConfig : `${existing}\n${plan.nixConfig}`);
}
/**
 * The shared files a journal's blocks may be in: nix.conf, the action's own machines file, Nix's default one (the
 * daemon reads `@/etc/nix/machines` when its nix.conf sets no `builders`), and each machines file nix.conf names now.
 */
function sharedFiles() {
    let conf = '';
    try {
        conf = (0,external_node_fs_.readFileSync)(NIX_CONF, 'utf8');
    }
    catch {
        // No nix.conf to read: only the default machines file is the daemon's.
    }
    const named = [...conf.matchAll(/^\s*builders\s*=\s*@(\/\S+)\s*$/gm)].map(match => match[1] ?? '');
    return { nixConf: NIX_CONF, machines: [SHARED_MACHINES, DEFAULT_MACHINES, ...named] };
}
function substitutesNotApplied(facts) {
    return (`'${constants/* Input */.pd.BuildersUseSubstitutes}' is not applied: the nix-daemon does not trust ${facts.userName}, so only its ` +
        `own nix.conf counts, and it reads that only at start, but neither systemd nor launchd runs here to restart ` +
        `it. Builds still offload; the builders get their inputs from the runner. To apply it, add ` +
        `"builders-use-substitutes = true" to ${NIX_CONF} and restart the nix-daemon before this step, or add ` +
        `${facts.userName} to trusted-users.`);
}
function untrustedWithoutRestartMessage(facts) {
    return (`Cannot configure the builders: the nix-daemon does not trust the runner user ${facts.userName} (so it ignores ` +
        `builders passed by the client) and ${NIX_CONF} sets "builders = ${facts.daemonBuilders}" instead of a machines ` +
        `file, so the daemon's own configuration must change, which takes a restart, but neither systemd nor launchd runs ` +
        `here. Fix: add "trusted-users = root ${facts.userName}" to ${NIX_CONF} (or remove its "builders" line) and ` +
        `restart the nix-daemon before this step.`);
}

// EXTERNAL MODULE: external "node:net"
var external_node_net_ = __webpack_require__(7030);
;// CONCATENATED MODULE: ./src/runner/ssh-masters.ts




/**
 * The SSH masters' ControlPath in a plan's work directory (an `ssh-masters` step's `controlDir`): `%C`, a hash of the
 * connection, keeps the socket's path short, and the 0700 work directory keeps the sockets the connecting user's.
 */
function controlPathIn(dir) {
    return `${dir}/cm-%C`;
}
/** The masters' step, with multiplexing only; `configFile`: the remote-store plan's own ssh config. */
function mastersSteps(multiplex, builders, controlDir, configFile) {
    if (!multiplex)
        return [];
    const aliases = builders.map(builder => builder.alias);
    return [{ kind: 'ssh-masters', aliases, controlDir, ...(configFile === undefined ? {} : { configFile }) }];
}
/** The masters' undo, recorded whatever the batch does: closing a master that never opened is harmless. */
function mastersChange(step) {
    return {
        undo: {
            kind: 'close-ssh-masters',
            aliases: step.aliases,
            path: step.controlDir,
            ...(step.configFile === undefined ? {} : { configFile: step.configFile })
        }
    };
}
/**
 * `ssh -O stop` through each alias (its config is still there): the master takes no new session and ends with the
 * last one, at once when idle. A build of another job that the shared daemon sent through this alias (machines-file
 * path) finishes instead of dying with it. A master that does not answer is killed by the control path its command
 * line names (a stopped one no longer names it; [c]: not to match the agent's own command line).
 */
function mastersUndoOps(undo) {
    const config = undo.configFile === undefined ? [] : ['-F', undo.configFile];
    return [
        ...undo.aliases.map((alias) => ({
            op: 'attempt',
            argv: ['ssh', ...config, '-O', 'stop', alias]
        })),
        { op: 'attempt', argv: ['pkill', '-f', '--', `${escapeRegex(undo.path)}/[c]m-`] }
    ];
}
/** A path as an extended regular expression that matches only itself (pkill -f). */
function escapeRegex(text) {
    return text.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
}
/** What the master says once it is up: its control socket listens before its session opens, or its LocalCommand runs. */
const MASTER_READY = 'nix-offload: master ready';
/** The masters this process started (the remote-store plan's store checks), each kept until `close`. */
class SshMasters {
    #running = [];
    /**
     * Starts `ssh` with `command` and waits until it says it is ready: undefined then, with the master kept when `keep`
     * (with multiplexing) and otherwise closed, since the connection was only the check. What ssh came to otherwise.
     */
    async open(command, how) {
        const { keep, ...options } = how;
        const master = (0,base_process/* startCompanion */.tV)('ssh', command, MASTER_READY, { ...options, track: 'ssh master' });
        const result = await master.ready;
        if (result !== undefined)
            return result;
        if (keep)
            this.#running.push(master);
        else
            await master.close(0);
        return undefined;
    }
    /**
     * Ends the masters, once nothing uses them: whether each ended by itself within two seconds (otherwise it was
     * stopped, and `ssh -O stop` through its socket is still worth a try).
     */
    async close() {
        const closing = this.#running.splice(0).map(master => master.close(2_000));
        return (await Promise.all(closing)).every(Boolean);
    }
}
/** How long the store check may take: the builder answered the preflight moments ago. */
const STORE_CHECK_TIMEOUT_MS = 60_000;
/**
 * The remote-store plan's check: `ssh -F <its config> <user@alias> true` as the runner user (the preflight has asked
 * the builder's store already, over the action's own SSH client). Without the runner's `nix` and the builder's
 * `nix-daemon --stdio` it is the shortest way to the master, on the path every small build waits on (bench/README.md,
 * "Figures behind choices in the code"). With multiplexing (a `controlPath`), the check is the master: this process's
 * own child, kept in `masters`.
 */
async function sshCheck(target, masters, signal) {
    const { configFile, builder, controlPath } = target;
    const destination = sshDestination(builder.storeUri);
    const started = Date.now();
    const bound = { timeoutMs: STORE_CHECK_TIMEOUT_MS, ...(signal === undefined ? {} : { signal }) };
    // A builder whose key runs only nix-daemon would start it for any command, and it waits for its protocol: no
    // command there at all (`-N`), and ssh says it is ready from this end (LocalCommand).
    const shell = builder.access === undefined || builder.access === 'shell';
    let result;
    let command;
    if (controlPath !== undefined || !shell) {
        const socket = controlPath === undefined ? undefined : await connectNoDelay(builder, signal);
        const fed = socket !== undefined;
        command = companionCommand({ configFile, destination, controlPath, fed, shell });
        // SHELL: LocalCommand's shell, whose stdout is the connection; /bin/sh reads no BASH_ENV that could print to it.
        const env = fed ? { ...process.env, SHELL: '/bin/sh' } : process.env;
        const keep = controlPath !== undefined;
        result = await masters.open(command, { ...bound, keep, env, ...(fed ? { transport: socket } : {}) });
    }
    else {
        command = ['-F', configFile, destination, 'true'];
        result = await (0,base_process/* runCommand */.d1)('ssh', command, bound);
    }
    return sshReach(builder, command, result, started);
}
function sshReach(builder, command, result, started) {
    const reach = {
        storeUri: builder.storeUri,
        builder: label(builder),
        // As a shell would take it: the master's remote command is one quoted word.
        command: ['ssh', ...command.map(word => (/^[\w@%./:=+-]+$/.test(word) ? word : (0,base_process/* shellQuote */.ZL)(word)))].join(' '),
        ok: result === undefined || result.code === 0,
        ms: Date.now() - started
    };
    if (result !== undefined && !reach.ok)
        reach.error = (0,base_process/* stderrTail */.be)(result.stderr) || `exit code ${result.code}`;
    if (result?.timedOut === true)
        reach.error = `it hung: no answer within ${STORE_CHECK_TIMEOUT_MS / 1000} s`;
    return reach;
}
/**
 * A TCP connection to the builder's address and port, as its ssh config names them, with Nagle's algorithm off:
 * OpenSSH turns it off itself only once the session is interactive, so its handshake would wait on the builder's
 * delayed ACKs (bench/README.md, "The builder's own store").
 * Undefined when it cannot connect: ssh then connects itself, and its error says why.
 */
function connectNoDelay(builder, signal) {
    return new Promise(resolve => {
        const socket = (0,external_node_net_.connect)({ host: builder.host, port: builder.port, noDelay: true });
        // Before it connects: what the server sends first (its version line) is for ssh, and Node must not read it.
        socket.pause();
        const abandon = () => settle(false);
        const settle = (connected) => {
            clearTimeout(timer);
            signal?.removeEventListener('abort', abandon);
            socket.removeAllListeners('error');
            socket.on('error', () => undefined);
            if (!connected)
                socket.destroy();
            resolve(connected ? socket : undefined);
        };
        const timer = setTimeout(() => settle(false), CONNECT_TIMEOUT_MS);
        // No longer wanted (the preflight failed): ssh, started with the same signal, then ends at once.
        signal?.addEventListener('abort', abandon, { once: true });
        if (signal?.aborted === true)
            abandon();
        socket.once('connect', () => settle(true));
        socket.once('error', () => settle(false));
    });
}
/** The ssh that checks a builder and stays as its master (with a `controlPath`), as runs on the builder's key. */
function companionCommand(how) {
    const { configFile, destination, controlPath } = how;
    const master = controlPath === undefined ? [] : ['-o', 'ControlMaster=yes'];
    if (how.fed)
        return ['-F', configFile, ...FED_MASTER, '-o', `ControlPath=${controlPath}`, '-N', destination];
    if (how.shell)
        return ['-F', configFile, ...master, destination, `echo ${MASTER_READY}; exec cat >/dev/null`];
    return [
        '-F',
        configFile,
        ...master,
        '-o',
        'PermitLocalCommand=yes',
        '-o',
        `LocalCommand=echo ${MASTER_READY}`,
        '-N',
        destination
    ];
}
/** The ssh config's ConnectTimeout. */
const CONNECT_TIMEOUT_MS = 10_000;
/**
 * The master of a connection this process opened (connectNoDelay): ssh takes it as its stdin and stdout
 * (`ProxyCommand -`, OpenSSH 6.5 and later), opens no session (`-N`), and says it is ready once its control socket
 * listens, on stderr (LocalCommand runs after that; its stdout would be the connection).
 */
const FED_MASTER = [
    '-o',
    'ControlMaster=yes',
    '-o',
    'ProxyCommand=-',
    '-o',
    'PermitLocalCommand=yes',
    '-o',
    `LocalCommand=echo ${MASTER_READY} >&2`
];

// EXTERNAL MODULE: ./src/base/ssh-agent.ts
var ssh_agent = __webpack_require__(9847);
;// CONCATENATED MODULE: ./src/runner/work-dir.ts

/**
 * The work directory of a plan under `parent`. Its name is the token's first 6 hex digits, since the control sockets
 * inside must fit a Unix socket path (`<dir>/cm-<40 hex>.<16>`, 107 bytes at most; speculative.ts's `tempDirectory`
 * counts on 6). A clash with a directory that is there already fails the mkdir, whose undo is then not recorded.
 */
function workDirIn(parent, token) {
    return `${parent.replace(/\/$/, '')}/nix-offload-${token.slice(0, 6)}`;
}
/**
 * The work directory and the key in it. A daemon connects as root, whose 0700 ~/.ssh keeps a key file from the runner
 * user. When the runner user's own nix connects (`viaAgent`), every `--impure` evaluation and build it runs can read
 * that user's files, and could send a key file out: the key then lives only in an ssh-agent of the step's, fed on
 * stdin, and the ssh config names the agent and the key's public half, which picks that key from it.
 */
function workDirWithKey(settings, workDir, viaAgent) {
    const mkdir = { kind: 'mkdir', path: workDir };
    if (!viaAgent) {
        const identityFile = `${workDir}/key`;
        return {
            files: { identityFile },
            steps: [mkdir, { kind: 'write', path: identityFile, mode: 0o600, content: settings.privateKey.text }]
        };
    }
    const identityFile = `${workDir}/key.pub`;
    const identityAgent = `${workDir}/agent`;
    return {
        files: { identityFile, identityAgent },
        steps: [
            mkdir,
            { kind: 'write', path: identityFile, mode: 0o644, content: `${settings.privateKey.publicLine}\n` },
            { kind: 'key-agent', socket: identityAgent, key: settings.privateKey.text }
        ]
    };
}
/** A step's file operation and the undo it records; `ownDir` is the work directory once a step has made it. */
function workDirChange(step, ownDir) {
    switch (step.kind) {
        case 'mkdir':
            return { op: { op: 'mkdir', path: step.path }, undo: { kind: 'remove-tree', path: step.path } };
        case 'write': {
            // A file of its own needs no undo of its own: its directory goes whole.
            if (ownDir === undefined || !step.path.startsWith(`${ownDir}/`))
                throw new Error(`the plan writes ${step.path} outside the action's own directory`);
            const data = Buffer.from(step.content).toString('base64');
            return { op: { op: 'create', path: step.path, data, mode: step.mode } };
        }
        case 'key-agent':
            // Started once the batch has made the directory its socket lives in (startKeyAgents).
            return { undo: { kind: 'stop-key-agent', socket: step.socket } };
    }
}
/** Starts the plan's key agents, once the batch has made the work directory. */
async function startKeyAgents(agents) {
    for (const agent of agents)
        await (0,ssh_agent/* startKeyAgent */.Jr)(agent.socket, agent.key);
}
/**
 * Stops an agent that this process started. False when it did not (a main step that ended without stopping it): its
 * undo's file operation then empties it.
 */
function stopOwnKeyAgent(undo) {
    return (0,ssh_agent/* stopKeyAgent */.jz)(undo.socket);
}
/** The file operations that take the work directory back. */
function workDirUndoOps(undo) {
    if (undo.kind === 'remove-tree')
        return [{ op: 'remove-tree', path: undo.path }];
    // The agent of a main step that ended without stopping it: emptied, it holds nothing worth reaching.
    return [{ op: 'attempt', argv: (0,ssh_agent/* emptyAgentCommand */.Ml)(undo.socket) }];
}

;// CONCATENATED MODULE: ./src/runner/plan.ts







/**
 * The settings this runner's Nix can take: `multiplex` turned off, with a notice saying why, when that Nix breaks on
 * SSH connection sharing (src/nix/nix-cli.ts `multiplexHazard`). Every plan is made from what this returns.
 */
function settingsForRunner(settings, facts) {
    if (!settings.multiplex)
        return { settings };
    const release = runnerRelease(facts);
    const hazard = multiplexHazard(release);
    if (hazard === undefined)
        return { settings };
    return {
        settings: { ...settings, multiplex: false },
        notice: `'${constants/* Input */.pd.Multiplex}' is turned off for this run: the runner's ${describeRelease(release)} ${hazard.reason} ` +
            `(${hazard.bug}, fixed in ${hazard.fixedIn}). Builds still offload, each over its own SSH connection. ` +
            `Set '${constants/* Input */.pd.Multiplex}: false' to silence this notice.`
    };
}
/**
 * The plan for a daemon's root or a single-user install's user: the ssh config block at the top of their
 * ~/.ssh/config, the work directory beside it, the masters, and what makes their Nix use the builders. `builders` are
 * the healthy ones from the preflight, with every `auto` value resolved.
 */
function makePlan(settings, builders, facts, token) {
    const sshDir = `${facts.sshHome.replace(/\/$/, '')}/.ssh`;
    const workDir = workDirIn(sshDir, token);
    // Without a daemon, the runner user's own nix connects.
    const key = workDirWithKey(settings, workDir, facts.store === 'local');
    const files = sshFilesIn(workDir, key.files, settings.multiplex);
    const ownMachinesFile = `${workDir}/machines`;
    const nix = nixConfigFor({ settings, facts, token, builders, ownMachinesFile });
    return {
        token,
        path: nix.path,
        asRoot: facts.store === 'daemon',
        workDir,
        machinesFile: nix.machinesFile,
        machinesShared: nix.machinesFile !== ownMachinesFile,
        builders,
        steps: [
            sshConfigBlock(sshDir, token, builders, files),
            ...key.steps,
            knownHostsFile(settings, files),
            ...mastersSteps(settings.multiplex, builders, workDir),
            ...nix.steps
        ],
        nixConfig: nix.nixConfig,
        warnings: nix.warnings
    };
}
/**
 * The remote-store plan: every file in a 0700 directory of the runner user's under `tempDir` (RUNNER_TEMP), no sudo.
 * Lix splits NIX_SSHOPTS on whitespace (docs/nix.md, "NIX_SSHOPTS splitting"), so the directory's path must have none.
 */
function makeStorePlan(settings, builders, token, tempDir) {
    if (/\s/.test(tempDir))
        throw new SetupError(`The temporary directory "${tempDir}" has whitespace in its path.`, 'runner');
    const workDir = workDirIn(tempDir, token);
    const key = workDirWithKey(settings, workDir, true);
    const files = { ...sshFilesIn(workDir, key.files, settings.multiplex), ownMaster: true };
    const configFile = `${workDir}/ssh_config`;
    return {
        token,
        path: 'remote-store',
        asRoot: false,
        workDir,
        machinesFile: '',
        machinesShared: false,
        builders,
        steps: [
            ...key.steps,
            knownHostsFile(settings, files),
            sshConfigFile(configFile, token, builders, files),
            ...mastersSteps(settings.multiplex, builders, workDir, configFile)
        ],
        nixConfig: '',
        sshConfigFile: configFile,
        warnings: []
    };
}
/** The files the ssh config names, all in the work directory. */
function sshFilesIn(workDir, key, multiplex) {
    return {
        ...key,
        knownHostsFile: `${workDir}/known_hosts`,
        ...(multiplex ? { controlPath: controlPathIn(workDir) } : {})
    };
}
/** The environment for the `nix` commands of this plan: NIX_SSHOPTS names the plan's ssh config (remote-store). */
function nixEnvironment(plan, env) {
    if (plan.sshConfigFile === undefined)
        return env;
    return { ...env, NIX_SSHOPTS: `-F ${plan.sshConfigFile}` };
}

// EXTERNAL MODULE: external "node:url"
var external_node_url_ = __webpack_require__(3136);
// EXTERNAL MODULE: external "node:child_process"
var external_node_child_process_ = __webpack_require__(1421);
;// CONCATENATED MODULE: ./src/agent/blocks.ts

/** A file the action created for its block, which goes with the last job's block. */
const MADE = '# nix-offload: this file was made by the nix-offload action, and goes with the block of the last job\n';
/** The same, when the action created the file's directory too. */
const MADE_WITH_DIR = '# nix-offload: this file and its directory were made by the nix-offload action, and go with the block of the last job\n';
/**
 * A job's token: 128 random bits, so that no other job's block has it. Hex, as the marker lines' pattern expects
 * (`blockTokens`).
 */
function newToken() {
    return (0,external_node_crypto_.randomBytes)(16).toString('hex');
}
const beginLine = (token) => `# nix-offload ${token}: begin`;
const endLine = (token) => `# nix-offload ${token}: end`;
/** Where this job's block starts and ends in `text` (its end marker line included, its newline not). */
function findBlock(text, token) {
    // The begin line at the start of a line: with a newline put before the text, its index is the line's own.
    const start = `\n${text}`.indexOf(`\n${beginLine(token)}`);
    if (start < 0)
        return undefined;
    const end = endLine(token);
    const endAt = text.indexOf(`\n${end}`, start);
    if (endAt < 0)
        return undefined;
    return [start, endAt + 1 + end.length];
}
/** The tokens of every job's block in `text`. */
function blockTokens(text) {
    return [...text.matchAll(/^# nix-offload ([0-9a-f]+): begin/gm)].map(match => match[1] ?? '');
}
/** The setting lines of every block, as a set: what the daemon would see of all the jobs together. */
function settingsOf(text) {
    const lines = new Set();
    for (const token of blockTokens(text)) {
        const found = findBlock(text, token);
        if (found === undefined)
            continue;
        for (const line of text.slice(found[0], found[1]).split('\n'))
            if (line.trim() !== '' && !line.startsWith('#'))
                lines.add(line.trim());
    }
    return [...lines].sort().join('\n');
}
/**
 * `text` with `block` on top (the block and its final newline) or at the end (a newline ending the last line, which
 * may have none, then the block without one). Either way the block's own bytes are the same few lines to take away.
 */
function withBlock(text, block, at) {
    const lines = block.replace(/\n$/, '');
    return at === 'top' ? `${lines}\n${text}` : `${text}\n${lines}`;
}
/** `text` without the block at `found`, and without the newline that came with it. */
function withoutBlock(text, found, at) {
    const [start, stop] = found;
    return at === 'top'
        ? text.slice(0, start) + text.slice(text[stop] === '\n' ? stop + 1 : stop)
        : text.slice(0, text[start - 1] === '\n' ? start - 1 : start) + text.slice(stop);
}
/** `text` with the block at `found` replaced by `block`. */
function withBlockReplaced(text, found, block) {
    return text.slice(0, found[0]) + block.replace(/\n$/, '') + text.slice(found[1]);
}

;// CONCATENATED MODULE: ./src/agent/lock.ts





/** Root's locks in a directory of root's own that every job on the host sees; a user's in their home directory. */
function defaultLockDir(uid = process.getuid?.() ?? 0, platform = process.platform) {
    if (uid === 0)
        return platform === 'darwin' ? '/var/run/nix-offload' : '/run/nix-offload';
    return (0,external_node_path_.join)((0,external_node_os_.homedir)(), '.cache', 'nix-offload', 'locks');
}
/**
 * Makes the lock directory (0700) if missing, and checks that it is a real directory of the agent's user that no one
 * else can write to: anyone who can create an entry there can plant a symlink where the agent opens its locks.
 */
function checkLockDir(dir) {
    try {
        (0,external_node_fs_.mkdirSync)(dir, { recursive: true, mode: 0o700 });
    }
    catch {
        // Something is there already: judged below, like a directory that was.
    }
    let stat;
    try {
        stat = (0,external_node_fs_.lstatSync)(dir);
    }
    catch (error) {
        throw new Error(`cannot make the lock directory ${dir}: ${error instanceof Error ? error.message : String(error)}`);
    }
    const uid = process.getuid?.() ?? 0;
    const problem = stat.isSymbolicLink()
        ? 'a symlink'
        : !stat.isDirectory()
            ? 'not a directory'
            : stat.uid !== uid
                ? `owned by uid ${stat.uid}`
                : (stat.mode & 0o077) !== 0
                    ? `open to others (mode ${(stat.mode & 0o777).toString(8)})`
                    : undefined;
    if (problem === undefined)
        return;
    throw new Error(`the lock directory ${dir} is ${problem}, not a directory of uid ${uid}'s own with mode 0700, so another user ` +
        `may have planted it: remove it (as uid ${uid}: rm -rf ${dir}); nix-offload makes it again`);
}
/** The lock file for a shared file, named by a hash of its real path (which may be long, or contain anything). */
function lockFileFor(dir, realPath) {
    return (0,external_node_path_.join)(dir, `${(0,external_node_crypto_.createHash)('sha256').update(realPath).digest('hex').slice(0, 32)}.lock`);
}
/** Takes the lock on `realPath`, waiting at most `waitMs` for another job to let go of it. */
function takeLock(realPath, options) {
    checkLockDir(options.dir);
    const path = lockFileFor(options.dir, realPath);
    const fd = openLockFile(path);
    try {
        waitForLock(fd, path, realPath, options);
        const holder = Buffer.from(`${options.holder}, pid ${process.pid}, since ${new Date().toISOString()}\n`);
        (0,external_node_fs_.ftruncateSync)(fd, 0);
        (0,external_node_fs_.writeSync)(fd, holder, 0, holder.length, 0);
    }
    catch (error) {
        (0,external_node_fs_.closeSync)(fd);
        throw error;
    }
    return { path, release: () => (0,external_node_fs_.closeSync)(fd) };
}
function openLockFile(path) {
    let fd;
    try {
        // O_NOFOLLOW: a symlink at the lock's path is an error (ELOOP), never followed to where it points.
        fd = (0,external_node_fs_.openSync)(path, external_node_fs_.constants.O_RDWR | external_node_fs_.constants.O_CREAT | external_node_fs_.constants.O_NOFOLLOW, 0o600);
    }
    catch (error) {
        throw new Error(`cannot open the lock file ${path}: ${error instanceof Error ? error.message : String(error)}`);
    }
    const stat = (0,external_node_fs_.fstatSync)(fd);
    if (!stat.isFile() || stat.uid !== (process.getuid?.() ?? 0)) {
        (0,external_node_fs_.closeSync)(fd);
        throw new Error(`the lock file ${path} is not a file of the agent's own user: remove it`);
    }
    return fd;
}
/** Locks fd 3 of the tool, waiting at most the bound (perl: an alarm), and exits: 0 locked, 1 timed out. */
const PERL_LOCK = 'open(my $f, ">&=", 3) or die "fd 3: $!\\n"; $SIG{ALRM} = sub { exit 1 }; alarm($ARGV[0]); ' +
    'flock($f, LOCK_EX) or exit($!{EINTR} ? 1 : 2); alarm(0); exit 0';
function waitForLock(fd, path, realPath, options) {
    const tool = options.tool ?? (process.platform === 'darwin' ? 'perl' : 'flock');
    const seconds = String(options.waitMs / 1000);
    const [command, args] = tool === 'perl'
        ? ['perl', ['-MFcntl=:flock', '-MTime::HiRes=alarm', '-e', PERL_LOCK, seconds]]
        : ['flock', ['-w', seconds, '3']];
    const result = (0,external_node_child_process_.spawnSync)(command, args, {
        stdio: ['ignore', 'ignore', 'pipe', fd],
        // The tool's own bound comes first; this one is for a tool that hangs.
        timeout: options.waitMs + 10_000,
        ...(options.env === undefined ? {} : { env: options.env })
    });
    if (result.status === 0)
        return;
    if (result.status === 1)
        throw new Error(`another nix-offload job has held the lock on ${realPath} for over ${seconds} s ` +
            `(lock file ${path}, held by ${holderOf(fd)})`);
    const why = result.error?.message ?? (result.stderr.toString().trim() || `exit ${String(result.status)}`);
    throw new Error(`cannot lock ${path} with ${command}: ${why}`);
}
function holderOf(fd) {
    const buffer = Buffer.alloc(512);
    const length = (0,external_node_fs_.readSync)(fd, buffer, 0, buffer.length, 0);
    return buffer.subarray(0, length).toString().trim() || 'a job that has not said who it is';
}

;// CONCATENATED MODULE: ./src/agent/replace.ts



/**
 * The path a shared file is edited at: its directory's real path and its own name. The file itself must not be a
 * symlink, and neither it nor its directory may be in the Nix store: nix-darwin and home-manager make nix.conf a link
 * into the store, which root must never rewrite, and renaming a new file over a link's target would change a file
 * that is not the one named.
 */
function editablePath(path, storeDir = '/nix/store') {
    const stat = lstatOrUndefined(path);
    const dir = (0,external_node_path_.dirname)(path);
    const real = (0,external_node_path_.join)((0,external_node_fs_.existsSync)(dir) ? (0,external_node_fs_.realpathSync)(dir) : dir, (0,external_node_path_.basename)(path));
    if (stat?.isSymbolicLink() === true) {
        const target = (0,external_node_fs_.readlinkSync)(path);
        const inStore = `${realpathOr(path)}/`.startsWith(`${storeDir}/`);
        throw new Error(`${path} is a symlink (to ${target}${inStore ? ', in the Nix store' : ''}), which nix-offload does not write ` +
            `through. ${AVOID}`);
    }
    if (`${real}/`.startsWith(`${storeDir}/`))
        throw new Error(`${path} is in the Nix store (${real}). ${AVOID}`);
    if (stat !== undefined && !stat.isFile())
        throw new Error(`${path} is not a regular file`);
    return real;
}
const AVOID = 'The strategy that needs no file of root’s avoids it: `strategy: remote-store`, or make the runner user ' +
    'trusted; or make it a regular file that root owns.';
/** A regular file's text and status, read without following a symlink; undefined when there is none. */
function readRegular(path) {
    let fd;
    try {
        fd = (0,external_node_fs_.openSync)(path, external_node_fs_.constants.O_RDONLY | external_node_fs_.constants.O_NOFOLLOW);
    }
    catch (error) {
        if (error instanceof Error && 'code' in error && error.code === 'ENOENT')
            return undefined;
        throw error;
    }
    try {
        const stat = (0,external_node_fs_.fstatSync)(fd);
        if (!stat.isFile())
            throw new Error(`${path} is not a regular file`);
        return { text: (0,external_node_fs_.readFileSync)(fd, 'utf8'), stat };
    }
    finally {
        (0,external_node_fs_.closeSync)(fd);
    }
}
/**
 * Writes a new file beside `path` and renames it over, so a reader sees the old file or the new one whole. It keeps
 * the old file's owner and mode (`mode` for a new file). The temporary file's name is random and opened with O_EXCL
 * and O_NOFOLLOW, so nothing another user planted beside the file is written through.
 */
function replaceFile(path, text, options) {
    const temporary = `${path}.nix-offload-${(0,external_node_crypto_.randomBytes)(8).toString('hex')}.tmp`;
    const flags = external_node_fs_.constants.O_WRONLY | external_node_fs_.constants.O_CREAT | external_node_fs_.constants.O_EXCL | external_node_fs_.constants.O_NOFOLLOW;
    const fd = (0,external_node_fs_.openSync)(temporary, flags, 0o600);
    try {
        const data = Buffer.from(text);
        let offset = 0;
        while (offset < data.length)
            offset += (0,external_node_fs_.writeSync)(fd, data, offset, data.length - offset);
        if (options.old !== undefined)
            keepOwner(fd, options.old);
        (0,external_node_fs_.fchmodSync)(fd, options.old === undefined ? options.mode : options.old.mode & 0o7777);
        (0,external_node_fs_.fsyncSync)(fd);
    }
    catch (error) {
        (0,external_node_fs_.closeSync)(fd);
        (0,external_node_fs_.unlinkSync)(temporary);
        throw error;
    }
    (0,external_node_fs_.closeSync)(fd);
    try {
        if (lstatOrUndefined(path)?.isSymbolicLink() === true)
            throw new Error(`${path} became a symlink`);
        (0,external_node_fs_.renameSync)(temporary, path);
    }
    catch (error) {
        (0,external_node_fs_.unlinkSync)(temporary);
        throw error;
    }
}
function keepOwner(fd, old) {
    try {
        (0,external_node_fs_.fchownSync)(fd, old.uid, old.gid);
    }
    catch (error) {
        // Only root can give a file away; a user's own files are theirs already.
        if (process.getuid?.() === 0)
            throw error;
    }
}
function lstatOrUndefined(path) {
    try {
        return (0,external_node_fs_.lstatSync)(path);
    }
    catch {
        return undefined;
    }
}
function realpathOr(path) {
    try {
        return (0,external_node_fs_.realpathSync)(path);
    }
    catch {
        return path;
    }
}

;// CONCATENATED MODULE: ./src/agent/agent.ts






/**
 * Carries out the operations in order and says how each went; it stops at the first failure unless `keepGoing`. As
 * root it is one `sudo node` for a whole plan instead of a sudo round trip per file, with the operations on stdin.
 */
function runAgent(request, context = { env: process.env }) {
    const results = [];
    for (const op of request.ops) {
        try {
            results.push(runOp(op, request, context));
        }
        catch (error) {
            results.push({ ok: false, error: error instanceof Error ? error.message : String(error) });
            if (!request.keepGoing)
                break;
        }
    }
    return results;
}
function runOp(op, request, context) {
    switch (op.op) {
        case 'read-if-exists':
            return (0,external_node_fs_.existsSync)(op.path)
                ? { ok: true, exists: true, data: (0,external_node_fs_.readFileSync)(op.path).toString('base64') }
                : { ok: true, exists: false };
        case 'create':
            writeNoFollow(op.path, op.data, external_node_fs_.constants.O_CREAT | external_node_fs_.constants.O_EXCL, op.mode);
            return { ok: true };
        case 'overwrite':
            writeNoFollow(op.path, op.data, external_node_fs_.constants.O_CREAT | external_node_fs_.constants.O_TRUNC);
            return { ok: true };
        case 'mkdir':
            (0,external_node_fs_.mkdirSync)(op.path, { mode: 0o700 });
            return { ok: true };
        case 'remove-tree':
            (0,external_node_fs_.rmSync)(op.path, { recursive: true, force: true });
            return { ok: true };
        case 'attempt': {
            const [command = 'true', ...args] = op.argv;
            const { status } = (0,external_node_child_process_.spawnSync)(command, args, { stdio: 'ignore', timeout: 10_000, env: context.env });
            return { ok: status === 0 };
        }
        default:
            return blockOp(op, request, context);
    }
}
/** Writes base64 `data` to `path` through no symlink, unreadable to others until it is given `mode`. */
function writeNoFollow(path, data, flags, mode) {
    const fd = (0,external_node_fs_.openSync)(path, external_node_fs_.constants.O_WRONLY | external_node_fs_.constants.O_NOFOLLOW | flags, 0o600);
    try {
        const bytes = Buffer.from(data, 'base64');
        let offset = 0;
        while (offset < bytes.length)
            offset += (0,external_node_fs_.writeSync)(fd, bytes, offset, bytes.length - offset);
        if (mode !== undefined)
            (0,external_node_fs_.fchmodSync)(fd, mode);
    }
    finally {
        (0,external_node_fs_.closeSync)(fd);
    }
}
function blockOp(op, request, context) {
    const path = editablePath(op.path);
    const lock = takeLock(path, {
        dir: request.lockDir ?? defaultLockDir(),
        waitMs: request.lockWaitMs,
        holder: `job ${op.token}`,
        env: context.env,
        ...(context.lockTool === undefined ? {} : { tool: context.lockTool })
    });
    try {
        if (op.op === 'add-block')
            return addBlock(op, path, context);
        if (op.op === 'set-block')
            return setBlock(op, path);
        return removeBlock(op, path, context);
    }
    finally {
        lock.release();
    }
}
function addBlock(op, path, context) {
    const old = readRegular(path);
    const before = old?.text ?? '';
    // A token is 128 random bits: a block that has it already is not this job's to take over, or to take away later.
    if (findBlock(before, op.token) !== undefined)
        throw new Error(`a block with this job's token already exists in ${path}`);
    let text = before;
    if (old === undefined) {
        const dir = (0,external_node_path_.dirname)(path);
        const madeDir = !(0,external_node_fs_.existsSync)(dir);
        if (madeDir)
            (0,external_node_fs_.mkdirSync)(dir, { mode: 0o700 });
        text = madeDir ? MADE_WITH_DIR : MADE;
    }
    const after = withBlock(text, op.text, op.at);
    replaceFile(path, after, { mode: op.mode, ...(old === undefined ? {} : { old: old.stat }) });
    return { ok: true, restarted: restartIf(op.restart, before, after, context) };
}
function setBlock(op, path) {
    const old = readRegular(path);
    const found = old === undefined ? undefined : findBlock(old.text, op.token);
    if (old === undefined || found === undefined)
        throw new Error(`no block of ${op.token} in ${path}`);
    replaceFile(path, withBlockReplaced(old.text, found, op.text), { mode: 0o600, old: old.stat });
    return { ok: true };
}
function removeBlock(op, path, context) {
    const old = readRegular(path);
    const before = old?.text ?? '';
    const found = findBlock(before, op.token);
    if (old === undefined || found === undefined)
        return { ok: true, others: blockTokens(before).length };
    const after = withoutBlock(before, found, op.at);
    if (after === MADE || after === MADE_WITH_DIR) {
        (0,external_node_fs_.unlinkSync)(path);
        const dir = (0,external_node_path_.dirname)(path);
        if (after === MADE_WITH_DIR && (0,external_node_fs_.readdirSync)(dir).length === 0)
            (0,external_node_fs_.rmdirSync)(dir);
    }
    else
        replaceFile(path, after, { mode: 0o600, old: old.stat });
    const now = readRegular(path)?.text ?? '';
    if (findBlock(now, op.token) !== undefined)
        throw new Error(`its block is still in ${path}`);
    return { ok: true, others: blockTokens(now).length, restarted: restartIf(op.restart, before, now, context) };
}
/** Runs `argv` when the settings of all blocks together changed: the nix-daemon reads nix.conf only at start. */
function restartIf(argv, before, after, context) {
    if (argv === undefined || settingsOf(before) === settingsOf(after))
        return false;
    const [command = 'true', ...args] = argv;
    const { status } = (0,external_node_child_process_.spawnSync)(command, args, { stdio: 'ignore', timeout: 120_000, env: context.env });
    if (status !== 0)
        throw new Error(`${argv.join(' ')} failed (exit ${String(status)})`);
    return true;
}

;// CONCATENATED MODULE: ./src/runner/file-agent.ts






/** Long enough for another job's whole batch, daemon restart included. */
const LOCK_WAIT_MS = 180_000;
/**
 * Runs the operations as root through one `sudo -n node` of the agent's own bundle, or in this process when no sudo is
 * needed. `lockDir` is for tests; the agent keeps its locks in a directory of its user's own.
 */
async function fileOps(ops, options) {
    if (ops.length === 0)
        return [];
    const request = {
        ops,
        keepGoing: options.keepGoing,
        lockWaitMs: LOCK_WAIT_MS,
        ...(options.lockDir === undefined ? {} : { lockDir: options.lockDir })
    };
    // In this process, children would inherit the step's inputs; under sudo, its env_reset drops them.
    if (!options.viaSudo)
        return runAgent(request, { env: (0,base_process/* childEnvironment */.Qc)(process.env) });
    const output = await (0,base_process/* runChecked */.X4)('sudo', ['-n', process.execPath, agentBundle()], {
        input: JSON.stringify(request),
        // sudo itself may wait (a PAM module, a password prompt it cannot show): bounded like everything else.
        timeoutMs: 120_000 + LOCK_WAIT_MS
    });
    return parseResults(output.toString());
}
/** The agent's bundle, dist/agent/index.js, beside the running one (dist/main or dist/post). */
function agentBundle() {
    // Built with path.join, not `new URL(…, import.meta.url)`, which the bundler would take for an asset to copy.
    const path = (0,external_node_path_.join)((0,external_node_path_.dirname)((0,external_node_url_.fileURLToPath)(import.meta.url)), '..', 'agent', 'index.js');
    if (!(0,external_node_fs_.existsSync)(path))
        throw new Error(`the file agent's bundle ${path} is missing: rebuild dist/ (npm run bundle)`);
    return path;
}
function parseResults(text) {
    const parsed = JSON.parse(text);
    if (!Array.isArray(parsed))
        throw new Error('the file agent answered something other than a list');
    return parsed.map((item) => {
        if (typeof item !== 'object' || item === null)
            return { ok: false, error: 'no answer' };
        const result = { ok: 'ok' in item && item.ok === true };
        if ('exists' in item && typeof item.exists === 'boolean')
            result.exists = item.exists;
        if ('data' in item && typeof item.data === 'string')
            result.data = item.data;
        if ('error' in item && typeof item.error === 'string')
            result.error = item.error;
        if ('others' in item && typeof item.others === 'number')
            result.others = item.others;
        if ('restarted' in item && typeof item.restarted === 'boolean')
            result.restarted = item.restarted;
        return result;
    });
}
/** Throws the first failure of a batch that had to succeed whole. */
function checkAll(ops, results) {
    const failed = results.findIndex(result => !result.ok);
    if (failed >= 0 || results.length < ops.length) {
        const op = ops[failed >= 0 ? failed : results.length];
        const where = op === undefined ? '' : 'path' in op ? op.path : op.argv.join(' ');
        throw new Error(`cannot ${op?.op ?? 'change'} ${where}: ${results[failed]?.error ?? 'not done'}`);
    }
}

// EXTERNAL MODULE: ./src/base/timing.ts
var timing = __webpack_require__(2035);
// EXTERNAL MODULE: ./src/base/step-log.ts
var step_log = __webpack_require__(880);
;// CONCATENATED MODULE: ./src/runner/apply.ts











/**
 * Changing the runner and taking it back: a plan's steps as one batch of file operations with the journal of their
 * undos (applyPlan), and that journal undone newest first in one batch (undoJournal), each resource's change and undo
 * coming from its own module; the store check that opens the SSH masters; and the post step.
 */
/**
 * Configures the runner for the builders (the plan, applied and journaled) and pings every builder's store through
 * the written config as the account that offloads (which opens the multiplexing masters, returned to be closed: each
 * configuration its own).
 * Later steps see the builders only once `exportNixConfig` runs.
 */
async function configureRunner(plan, facts, options = { announce: true }) {
    if (options.announce && facts !== undefined)
        announcePlan(plan, facts);
    const journal = await (0,timing/* phase */.O)('configure', applyPlan(plan));
    const masters = new SshMasters();
    const stores = await (0,timing/* phase */.O)('store check', pingStores(plan, facts, { masters, signal: options.signal }));
    return { stores, journal, masters };
}
/** Says whom the runner is configured for and how, each builder's alias, and the plan's warnings. */
function announcePlan(plan, facts) {
    const who = plan.path === 'remote-store'
        ? `${facts.userName} (its own nix opens the SSH connections, with ${plan.sshConfigFile ?? 'an ssh config'})`
        : plan.asRoot
            ? 'root (the nix-daemon opens the SSH connections)'
            : facts.userName;
    (0,step_log/* logInfo */.fH)(`Configuring for ${who} (${plan.path}).`);
    for (const builder of plan.builders) {
        (0,step_log/* logInfo */.fH)(`Builder ${builder.storeUri} → ${label(builder)} (${builder.systems.join(', ')})`);
    }
    for (const warning of plan.warnings)
        (0,step_log/* logWarning */.FF)(warning, { title: 'nix-offload' });
}
/**
 * Carries out the plan on the runner in one batch of file operations. The journal of every change is saved to the
 * action's state before the batch starts, so that a main step killed half-way leaves the post step a record: undoing
 * what never happened is harmless (no block has this job's 128-bit token, no directory its name). Once the batch has
 * answered, the journal keeps only the undos of the changes made: a directory or a block that was there already is
 * not this job's to remove.
 */
async function applyPlan(plan) {
    const { ops, undos, agents } = batchOf(plan);
    saveJournal({ asRoot: plan.asRoot, token: plan.token, undo: undos.map(entry => entry.undo) });
    const results = await fileOps(ops, { viaSudo: viaSudo(plan), keepGoing: false });
    const made = undos.filter(entry => entry.op === undefined || results[entry.op]?.ok === true);
    const journal = { asRoot: plan.asRoot, token: plan.token, undo: made.map(entry => entry.undo) };
    saveJournal(journal);
    checkAll(ops, results);
    await startKeyAgents(agents);
    return journal;
}
function batchOf(plan) {
    const batch = { ops: [], undos: [], agents: [] };
    let ownDir;
    for (const step of plan.steps) {
        const { op, undo } = changeOf(step, plan.token, ownDir);
        if (step.kind === 'mkdir')
            ownDir = step.path;
        if (step.kind === 'key-agent')
            batch.agents.push(step);
        if (undo !== undefined)
            batch.undos.push({ undo, ...(op === undefined ? {} : { op: batch.ops.length }) });
        if (op !== undefined)
            batch.ops.push(op);
    }
    return batch;
}
/** A step's change, from the module of the resource it changes. */
function changeOf(step, token, ownDir) {
    switch (step.kind) {
        case 'block':
            return blockChange(step, token);
        case 'ssh-masters':
            return mastersChange(step);
        default:
            return workDirChange(step, ownDir);
    }
}
/**
 * Undoes a journal, newest change first, in one batch of file operations: each block removal checks that none of
 * this job's block is left, and counts other jobs' blocks. A failure is a warning, never an error.
 */
async function undoJournal(journal) {
    // An agent this process started stops here; one that a main step left running is emptied by the file operations.
    const left = [];
    for (const undo of journal.undo)
        if (undo.kind !== 'stop-key-agent' || !(await stopOwnKeyAgent(undo)))
            left.push(undo);
    const ops = left.reverse().flatMap(undoOpsOf);
    const outcome = { failures: 0, othersLeft: new Map() };
    try {
        const results = await fileOps(ops, { viaSudo: viaSudo(journal), keepGoing: true });
        ops.forEach((op, index) => {
            const result = results[index];
            if (op.op === 'attempt')
                return;
            const path = 'path' in op ? op.path : '';
            if (result?.ok === true) {
                if ((result.others ?? 0) > 0)
                    outcome.othersLeft.set(path, result.others ?? 0);
                return;
            }
            outcome.failures++;
            (0,step_log/* logWarning */.FF)(`nix-offload could not undo its change to ${path}: ${result?.error ?? 'no answer'}`);
        });
    }
    catch (error) {
        outcome.failures++;
        (0,step_log/* logWarning */.FF)(`nix-offload could not undo its changes: ${error instanceof Error ? error.message : String(error)}`);
    }
    return outcome;
}
/** An undo's file operations, from the module of the resource it takes back. */
function undoOpsOf(undo) {
    switch (undo.kind) {
        case 'remove-block':
            return [blockUndoOp(undo)];
        case 'close-ssh-masters':
            return mastersUndoOps(undo);
        default:
            return workDirUndoOps(undo);
    }
}
/**
 * The seed's `sudo nix store ping --store ssh-ng://user@alias` check (spelled `nix store info` from Nix 2.19, see
 * nix/), for every builder at once. It goes through the same ssh config, key file and known_hosts the daemon will
 * use, as the same account, so it catches what the action's own SSH client cannot: permissions, an ssh config of
 * root's that overrides ours, a sudo that does not work. Without `facts` (started before the runner probe ends, for
 * the remote-store plan, which needs no sudo): `nix` from PATH, and the `store ping` form that every version accepts.
 */
async function pingStores(plan, facts, options = {}) {
    const { masters: opened = new SshMasters(), signal } = options;
    const configFile = plan.sshConfigFile;
    if (plan.path === 'remote-store' && configFile !== undefined) {
        const masters = plan.steps.find(step => step.kind === 'ssh-masters');
        const controlPath = masters === undefined ? undefined : controlPathIn(masters.controlDir);
        return Promise.all(plan.builders.map(builder => sshCheck({ configFile, builder, controlPath }, opened, signal)));
    }
    return Promise.all(plan.builders.map(builder => nixStoreCheck(plan, builder, facts, signal)));
}
async function nixStoreCheck(plan, builder, facts, signal) {
    const check = storeInfoArgs({
        implementation: facts?.nixImplementation ?? 'nix',
        version: facts?.nixVersion ?? ''
    });
    const nixPath = facts?.nixPath ?? 'nix';
    const args = [...NIX_FEATURES, ...check, '--store', builder.storeUri];
    const started = Date.now();
    // Bounded: a builder that stops answering after the preflight must not turn this into a six-hour job.
    const bound = { timeoutMs: STORE_CHECK_TIMEOUT_MS, ...(signal === undefined ? {} : { signal }) };
    const result = viaSudo(plan)
        ? await (0,base_process/* runCommand */.d1)('sudo', ['-n', nixPath, ...args], bound)
        : await (0,base_process/* runCommand */.d1)(nixPath, args, { ...bound, env: nixEnvironment(plan, process.env) });
    const reach = {
        storeUri: builder.storeUri,
        builder: label(builder),
        command: `nix ${check.join(' ')} --store ${builder.storeUri}`,
        ok: result.code === 0,
        ms: Date.now() - started
    };
    const { version, trusted } = parseStoreInfo(result.stdout.toString(), result.stderr);
    if (version !== undefined)
        reach.version = version;
    if (trusted !== undefined)
        reach.trusted = trusted;
    if (!reach.ok)
        reach.error = (0,base_process/* stderrTail */.be)(result.stderr);
    if (result.timedOut === true) {
        reach.error =
            `it hung: no answer within ${STORE_CHECK_TIMEOUT_MS / 1000} s (the builder accepted the SSH connection ` +
                'but its Nix did not answer: is its nix-daemon running and responsive?)';
    }
    return reach;
}
/**
 * The post step: stops what a killed main left running, then undoes, newest first, what main recorded, in one batch
 * of file operations, in the log's Undo group. It warns instead of failing, so it never breaks a job.
 */
function cleanup() {
    return (0,step_log/* inGroup */.HB)(step_log/* Phase */.a0.Undo, undoAll);
}
async function undoAll() {
    await stopLeftRunning();
    let journal;
    try {
        journal = loadJournal(sharedFiles());
    }
    catch (error) {
        (0,step_log/* logWarning */.FF)(`nix-offload did not undo anything: the state its main step saved is not a journal it could have written ` +
            `(${error instanceof Error ? error.message : String(error)}), so nothing was touched. A process of the job ` +
            `may have written to GITHUB_STATE; remove any nix-offload-<token> directory and "# nix-offload <token>" ` +
            `block it left by hand.`);
        return;
    }
    if (journal === undefined || journal.undo.length === 0) {
        (0,step_log/* logInfo */.fH)(constants/* NOTHING_TO_UNDO */.x_);
        return;
    }
    const outcome = await undoJournal(journal);
    (0,step_log/* logInfo */.fH)(describeUndo(journal, outcome));
}
/** How long a process left running has to end after SIGTERM before it is killed. */
const STOP_WAIT_MS = 3_000;
/**
 * A main step killed (SIGKILL, the OOM killer) leaves its `nix` running, and with it the build on the builder, whose
 * daemon interrupts it once this client's connection is gone. Stopped first: they use the files the undo removes.
 */
async function stopLeftRunning() {
    let records;
    try {
        records = loadChildren();
    }
    catch (error) {
        (0,step_log/* logWarning */.FF)(`nix-offload stopped no process: the record of what its main step started is not one it could have written ` +
            `(${error instanceof Error ? error.message : String(error)}).`);
        return;
    }
    const stopped = await (0,processes/* stopProcesses */.a)(records, STOP_WAIT_MS);
    if (stopped.length === 0)
        return;
    const named = stopped.map(record => `${record.label} (pid ${record.pid})`).join(', ');
    (0,step_log/* logInfo */.fH)(`nix-offload: stopped ${stopped.length} process(es) main left running: ${named}.`);
}
function describeUndo(journal, outcome) {
    if (outcome.failures > 0)
        return `nix-offload: ${outcome.failures} change(s) could not be undone (see the warnings above).`;
    const others = [...outcome.othersLeft].map(([path, count]) => `${count} in ${path}`);
    return others.length === 0
        ? `nix-offload: undid ${journal.undo.length} change(s); the runner is as it was before the action.`
        : `nix-offload: undid ${journal.undo.length} change(s); none of this job's configuration is left. Other jobs' ` +
            `blocks (${others.join(', ')}) are theirs, and were left alone.`;
}

;// CONCATENATED MODULE: ./src/runner/index.ts
/**
 * runner: the runner's side. The read-only probe of its Nix, and whether root's changes go through sudo (probe.ts);
 * the pure plan of every change (plan.ts), made of one module per resource, each with its change and its undo side by
 * side: the work directory and the key agent in it (work-dir.ts), the ssh config block that defines the
 * configured builders' aliases (ssh-config.ts), the machines block and the nix.conf block (nix-config.ts), the SSH masters and the store check
 * that opens them (ssh-masters.ts). Applying the plan with a journal of undo steps, undoing it, and the post step
 * (apply.ts), through the batched sudo file agent (file-agent.ts); the journal saved for the post step, checked when
 * read (state.ts).
 * May import: base, inputs, nix.
 */








/***/ })

};
