export const id = 518;
export const ids = [518];
export const modules = {

/***/ 518:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {


// EXPORTS
__webpack_require__.d(__webpack_exports__, {
  cleanup: () => (/* reexport */ cleanup)
});

// UNUSED EXPORTS: announcePlan, checkAll, childRecorder, configureRunner, exportNixConfig, fileOps, isTrustedUser, machinesFileOp, makePlan, makeStorePlan, newToken, nixEnvironment, probeRunner, runnerRelease, saveJournal, settingsForRunner, undoJournal, viaSudo

// EXTERNAL MODULE: ./node_modules/@actions/core/lib/core.js + 11 modules
var lib_core = __webpack_require__(659);
;// CONCATENATED MODULE: ./src/base/safe-text.ts

/**
 * Text from outside the action (a builder, the evaluation, Nix's log, saved state) made harmless to print on the
 * runner's log. The runner reads a workflow command from any line that starts with `::` once leading blanks are
 * trimmed, and an old-style one from `##[` anywhere in a line; a bare `\r` ends a line for it as `\n` does.
 * `core.error`/`warning`/`notice` escape `%`, `\r` and `\n` in their message, but `core.info` writes raw text.
 */
// C0 controls and DEL, C1 controls, and Unicode's line and paragraph separators.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
// eslint-disable-next-line no-control-regex
const CONTROL_BUT_LINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029]/g;
const NAMED = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };
/** `\r` → `\r` as two visible characters; others as `\x1b`, `\u2028`. */
function visible(char) {
    const code = char.charCodeAt(0);
    return (NAMED[char] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16)}`));
}
/** A zero-width space between the two characters that would start a workflow command: the text still reads the same. */
function breakCommands(text) {
    return text.replace(/:(?=:)/g, ':\u200b').replace(/#(?=#\[)/g, '#\u200b');
}
/** One line of outside text, for a field printed inside a line: every control character shown as an escape. */
function safe_text_safeLine(text) {
    return breakCommands(text.replace(CONTROL, visible));
}
/** Outside text of several lines (an error's tail, a message): its `\n` and tabs kept, every other control escaped. */
function safeText(text) {
    return breakCommands(text.replace(CONTROL_BUT_LINES, visible));
}
/**
 * `core.info` for everything the action prints outside the build's own log (which build.ts prints between
 * `::stop-commands::` and its resume token): any of it may hold text from outside.
 */
function safe_text_logInfo(text) {
    lib_core/* info */.pq(safeText(text));
}

// EXTERNAL MODULE: external "node:fs"
var external_node_fs_ = __webpack_require__(24);
// EXTERNAL MODULE: external "node:child_process"
var external_node_child_process_ = __webpack_require__(421);
;// CONCATENATED MODULE: ./src/base/process.ts


/** How long a child may run unless its caller says otherwise: a local question or one to a builder, never a build. */
const DEFAULT_TIMEOUT_MS = 50_000;
/**
 * How long a child's pipes may stay open after it exited: a grandchild it left behind (`sleep 30 &`) holds them, and
 * must not hold the step.
 */
const DRAIN_MS = 2_000;
/**
 * Runs a command to its end: its exit, and its pipes drained (at most DRAIN_MS after). A command that cannot be
 * started (not found) rejects; any exit code resolves.
 */
function process_runCommand(command, args, options = {}) {
    return new Promise((resolve, reject) => {
        const child = (0,external_node_child_process_.spawn)(command, args, {
            env: childEnvironment(options.env ?? process.env),
            stdio: ['pipe', 'pipe', 'pipe']
        });
        const stdout = [];
        const stderr = [];
        const { input } = options;
        const bounds = bound(child, options, input instanceof Promise ? input : undefined);
        const untrack = follow(child, options.track);
        child.stdout.on('data', (chunk) => stdout.push(chunk));
        // A build log can be gigabytes: with a listener, stderr is streamed and not kept.
        child.stderr.on('data', (chunk) => options.onStderr ? options.onStderr(chunk) : stderr.push(chunk));
        child.on('error', error => {
            bounds.release();
            untrack();
            reject(error);
        });
        void ended(child).then(code => {
            bounds.release();
            untrack();
            const result = {
                code,
                stdout: Buffer.concat(stdout),
                stderr: Buffer.concat(stderr).toString('utf8')
            };
            if (bounds.timedOut()) {
                result.timedOut = true;
                result.stderr += hungLine(command, args, options.timeoutMs);
            }
            resolve(result);
        });
        // A process that exits without reading its stdin is not an error of ours.
        child.stdin.on('error', () => undefined);
        if (input instanceof Promise)
            input.then(text => child.stdin.end(text), () => child.stdin.end());
        else
            child.stdin.end(input);
    });
}
/**
 * Starts a process that stays: it says it is ready with `readyLine` on stdout (on stderr with a `transport`), and ends
 * when its stdin closes (with a `transport`: when it is stopped).
 */
function process_startCompanion(command, args, readyLine, options = {}) {
    const { transport } = options;
    const child = spawn(command, args, {
        env: childEnvironment(options.env ?? process.env),
        stdio: transport === undefined ? ['pipe', 'pipe', 'pipe'] : [transport, transport, 'pipe']
    });
    // The child has its own copy of the socket (spawn returns once it runs): this one must neither read nor hold it.
    transport?.destroy();
    const untrack = follow(child, options.track);
    const end = new Promise(resolve => {
        child.on('error', () => resolve(127));
        void ended(child).then(resolve);
    }).finally(untrack);
    child.stdin?.on('error', () => undefined);
    const bounds = bound(child, options);
    const says = transport === undefined ? child.stdout : child.stderr;
    const ready = new Promise(resolve => {
        const stdout = [];
        const stderr = [];
        const settle = (result) => {
            bounds.release();
            resolve(result);
        };
        const seen = transport === undefined ? stdout : stderr;
        says?.on('data', (chunk) => {
            seen.push(chunk);
            if (!Buffer.concat(seen).toString('utf8').split('\n').includes(readyLine))
                return;
            // Ready: from now on it lives beside the step without holding it.
            says.removeAllListeners('data');
            says.resume();
            for (const handle of [child, child.stdin, child.stdout, child.stderr])
                if (handle !== null)
                    unref(handle);
            settle(undefined);
        });
        if (transport === undefined)
            child.stderr?.on('data', (chunk) => stderr.push(chunk));
        void end.then(code => {
            const result = {
                code,
                stdout: Buffer.concat(stdout),
                stderr: Buffer.concat(stderr).toString('utf8')
            };
            if (bounds.timedOut())
                result.timedOut = true;
            settle(result);
        });
    });
    const close = async (waitMs) => {
        if (transport === undefined)
            child.stdin?.end();
        else
            child.kill('SIGTERM');
        let timer;
        const byItself = await Promise.race([
            end.then(() => true),
            new Promise(resolve => (timer = setTimeout(() => resolve(false), waitMs)))
        ]);
        clearTimeout(timer);
        if (!byItself)
            bounds.stop();
        return byItself;
    };
    return { ready, close };
}
/**
 * The exit code once `child` has exited and its pipes have closed, or DRAIN_MS after it exited: then its pipes are
 * destroyed, whatever still holds them. A child killed by a signal has no code: 1.
 */
function ended(child) {
    return new Promise(resolve => {
        child.once('close', code => resolve(code ?? 1));
        child.once('exit', code => {
            const drained = setTimeout(() => {
                for (const pipe of [child.stdin, child.stdout, child.stderr])
                    pipe?.destroy();
                resolve(code ?? 1);
            }, DRAIN_MS);
            drained.unref();
            child.once('close', () => clearTimeout(drained));
        });
    });
}
/** The line a timed-out command's stderr ends with, so that any message quoting its stderr says what hung. */
function hungLine(command, args, timeoutMs) {
    const seconds = Math.round((typeof timeoutMs === 'number' ? timeoutMs : DEFAULT_TIMEOUT_MS) / 1000);
    const line = [command, ...args].join(' ');
    const shown = line.length > 200 ? `${line.slice(0, 200)}…` : line;
    return `\n\`${shown}\` hung: no end within ${seconds} s, so it was stopped\n`;
}
/**
 * Stops `child` (TERM, then KILL 5 s later) once its time bound has passed (counted from when `startAfter` settles,
 * if given) or `signal` aborts, until `release` is called: the bounds of runCommand and startCompanion.
 */
function bound(child, options, startAfter) {
    const stop = () => {
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
    };
    let timedOut = false;
    let released = false;
    let timer;
    const { timeoutMs = DEFAULT_TIMEOUT_MS } = options;
    const arm = () => {
        if (released || timeoutMs === 'none')
            return;
        timer = setTimeout(() => {
            timedOut = true;
            stop();
        }, timeoutMs);
    };
    if (startAfter === undefined)
        arm();
    else
        startAfter.then(arm, arm);
    const { signal } = options;
    if (signal?.aborted === true)
        stop();
    signal?.addEventListener('abort', stop, { once: true });
    return {
        stop,
        timedOut: () => timedOut,
        release: () => {
            released = true;
            clearTimeout(timer);
            signal?.removeEventListener('abort', stop);
        }
    };
}
let tracker;
/** Sets who is told of tracked children (the main step, which records them for the post step). */
function trackChildren(next) {
    tracker = next;
}
/** Tells the tracker of `child` if it has a label: returns what to call once it ended. */
function follow(child, label) {
    const told = tracker;
    const { pid } = child;
    if (told === undefined || label === undefined || pid === undefined)
        return () => undefined;
    told.started(pid, label);
    return () => told.ended(pid);
}
/** Lets Node end while `handle` is still open: a child process, or one of its pipes (a net.Socket underneath). */
function unref(handle) {
    if ('unref' in handle && typeof handle.unref === 'function')
        handle.unref();
}
/**
 * The last three lines of a process's stderr on one line, made harmless to print: how a failure is quoted in a
 * message (the stderr of `nix` or `ssh` may quote the builder).
 */
function process_stderrTail(stderr) {
    return stderr
        .trim()
        .split('\n')
        .slice(-3)
        .map(line => safeLine(line))
        .join(' / ');
}
/** Runs a command that must succeed; the error carries its stderr. */
async function process_runChecked(command, args, options = {}) {
    const result = await process_runCommand(command, args, options);
    if (result.code !== 0) {
        const detail = safeText(result.stderr.trim().split('\n').slice(-5).join('\n'));
        throw new Error(`\`${[command, ...args].join(' ')}\` exited with code ${result.code}${detail ? `: ${detail}` : ''}`);
    }
    return result.stdout;
}
/**
 * What a child process may see of the environment: all of it but the step's inputs (INPUT_*, the private key among
 * them) and the runner's tokens for the Actions services. An `--impure` expression reads the environment of
 * `nix build` with `builtins.getEnv`, and a build script reads its own.
 */
function childEnvironment(env) {
    const result = {};
    for (const [name, value] of Object.entries(env)) {
        if (value === undefined || /^INPUT_/i.test(name) || SECRET_VARIABLES.has(name))
            continue;
        result[name] = value;
    }
    return result;
}
/** The runner's credentials for its own services (cache, OIDC): the action uses them in-process only. */
const SECRET_VARIABLES = new Set(['ACTIONS_RUNTIME_TOKEN', 'ACTIONS_ID_TOKEN_REQUEST_TOKEN']);
/** One word for a POSIX shell, single-quoted: what `ssh` and `sh -c` hand the builder's shell as a command line. */
function process_shellQuote(word) {
    return `'${word.replace(/'/g, `'\\''`)}'`;
}

;// CONCATENATED MODULE: ./src/base/processes.ts


/** When process `pid` started, as ProcessRecord's `start`; undefined when it no longer runs. */
async function processes_startTimeOf(pid) {
    if (process.platform === 'linux')
        return procEntry(String(pid))?.start;
    const result = await process_runCommand('ps', ['-o', 'lstart=', '-p', String(pid)], { env: PS_ENV });
    const start = result.stdout.toString().trim().replace(/\s+/g, ' ');
    return result.code === 0 && start !== '' ? start : undefined;
}
/**
 * Stops the recorded processes that still run, and every process they started: only those that are the same
 * processes (pid and start time) and this user's. SIGTERM first, so that `nix` ends its SSH sessions itself, then
 * SIGKILL after `waitMs`. Answers the records it found running.
 */
async function stopProcesses(records, waitMs) {
    const table = await processTable();
    const uid = process.getuid?.();
    const mine = (entry) => uid === undefined || entry.uid === uid;
    const running = records.filter(record => table.some(entry => entry.pid === record.pid && entry.start === record.start && mine(entry)));
    const targets = withDescendants(running.map(record => record.pid), table).filter(mine);
    for (const target of targets)
        signal(target.pid, 'SIGTERM');
    const deadline = Date.now() + waitMs;
    let left = targets;
    while (left.length > 0 && Date.now() < deadline) {
        await new Promise(resolve => setTimeout(resolve, 50));
        left = await stillRunning(left);
    }
    for (const target of await stillRunning(left))
        signal(target.pid, 'SIGKILL');
    return running;
}
/** The processes `pids` name, and all their descendants, as `table` has them. */
function withDescendants(pids, table) {
    const found = new Map();
    let frontier = table.filter(entry => pids.includes(entry.pid));
    while (frontier.length > 0) {
        for (const entry of frontier)
            found.set(entry.pid, entry);
        frontier = table.filter(entry => found.has(entry.ppid) && !found.has(entry.pid));
    }
    return [...found.values()];
}
async function stillRunning(entries) {
    const starts = await Promise.all(entries.map(entry => processes_startTimeOf(entry.pid)));
    return entries.filter((entry, index) => starts[index] === entry.start);
}
function signal(pid, name) {
    try {
        process.kill(pid, name);
    }
    catch {
        // It ended meanwhile.
    }
}
/** Every process on the machine: /proc on Linux, `ps` elsewhere (macOS). */
async function processTable() {
    if (process.platform === 'linux') {
        return (0,external_node_fs_.readdirSync)('/proc')
            .filter(name => /^\d+$/.test(name))
            .map(procEntry)
            .filter(entry => entry !== undefined);
    }
    const result = await process_runCommand('ps', ['-A', '-o', 'pid=,ppid=,uid=,lstart='], { env: PS_ENV });
    return result.stdout
        .toString()
        .split('\n')
        .map(line => /^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\S.*)$/.exec(line))
        .filter(match => match !== null)
        .map(([, pid, ppid, uid, start]) => ({
        pid: Number(pid),
        ppid: Number(ppid),
        uid: Number(uid),
        start: (start ?? '').trim().replace(/\s+/g, ' ')
    }));
}
/** `lstart` in one format whatever the runner's locale. */
const PS_ENV = { ...process.env, LC_ALL: 'C' };
/** A Linux process from /proc/<pid>/stat: the fields after the command name, which may hold spaces and parentheses. */
function procEntry(pid) {
    try {
        const stat = (0,external_node_fs_.readFileSync)(`/proc/${pid}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        const start = fields[19];
        const ppid = Number(fields[1]);
        // A zombie has ended: only its parent's wait is missing.
        if (start === undefined || !Number.isInteger(ppid) || fields[0] === 'Z')
            return undefined;
        return { pid: Number(pid), ppid, uid: (0,external_node_fs_.statSync)(`/proc/${pid}`).uid, start };
    }
    catch {
        return undefined;
    }
}

// EXTERNAL MODULE: ./src/inputs/constants.ts
var inputs_constants = __webpack_require__(68);
// EXTERNAL MODULE: external "node:path"
var external_node_path_ = __webpack_require__(760);
// EXTERNAL MODULE: external "node:url"
var external_node_url_ = __webpack_require__(136);
// EXTERNAL MODULE: external "node:crypto"
var external_node_crypto_ = __webpack_require__(598);
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
    return randomBytes(16).toString('hex');
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

// EXTERNAL MODULE: external "node:os"
var external_node_os_ = __webpack_require__(161);
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
async function file_agent_fileOps(ops, options) {
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
        return runAgent(request, { env: childEnvironment(process.env) });
    const output = await process_runChecked('sudo', ['-n', process.execPath, agentBundle()], {
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
function file_agent_checkAll(ops, results) {
    const failed = results.findIndex(result => !result.ok);
    if (failed >= 0 || results.length < ops.length) {
        const op = ops[failed >= 0 ? failed : results.length];
        const where = op === undefined ? '' : 'path' in op ? op.path : op.argv.join(' ');
        throw new Error(`cannot ${op?.op ?? 'change'} ${where}: ${results[failed]?.error ?? 'not done'}`);
    }
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
        throw new SetupError(untrustedWithoutRestartMessage(facts));
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
    core.exportVariable('NIX_CONFIG', existing === '' ? plan.nixConfig : `${existing}\n${plan.nixConfig}`);
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
    return (`'${Input.BuildersUseSubstitutes}' is not applied: the nix-daemon does not trust ${facts.userName}, so only its ` +
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

;// CONCATENATED MODULE: ./src/runner/probe.ts





/**
 * The probe asks the local Nix and the user database only: most of a minute without an answer is a hung daemon, not
 * a slow one (the stop's grace and the pipes' drain keep the whole under a minute).
 */
const PROBE_TIMEOUT_MS = 50_000;
async function probeRunner(env = process.env) {
    const user = userInfo();
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
function probe_viaSudo(owner) {
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
        runCommand('nix', [...NIX_FEATURES, ...checkArgs], { env, timeoutMs: PROBE_TIMEOUT_MS }),
        nixOutput([...NIX_FEATURES, ...configShowArgs(release)], daemonView)
    ]);
    if (check.code !== 0) {
        throw new SetupError(`Cannot reach the runner's Nix store (\`nix ${checkArgs.join(' ')}\` failed: ${lastLine(check.stderr)}). ` +
            'Is Nix installed and, on a multi-user install, is the nix-daemon running?');
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
            accessSync(candidate, constants.X_OK);
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
    return existsSync('/run/systemd/system') ? 'systemd' : 'none';
}
async function nixOutput(args, env) {
    let result;
    try {
        result = await runCommand('nix', args, { env, timeoutMs: PROBE_TIMEOUT_MS });
    }
    catch {
        throw new SetupError('Nix is not installed on the runner (no `nix` on PATH): install it in an earlier step.');
    }
    if (result.code !== 0)
        throw new SetupError(`\`nix ${args.join(' ')}\` failed: ${lastLine(result.stderr)}`);
    return result.stdout.toString();
}
/** The output of a question to the system (the user database), or a SetupError saying which one hung. */
async function askSystem(command, args, question) {
    const { env = process.env, timeoutMs = PROBE_TIMEOUT_MS } = question;
    const result = await runCommand(command, args, { env, timeoutMs });
    if (result.timedOut === true) {
        throw new SetupError(`\`${[command, ...args].join(' ')}\` hung: no answer within ${timeoutMs / 1000} s. The runner's user database ` +
            '(NSS: LDAP, SSSD) is not answering; fix it or use a runner whose accounts are local.');
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
        throw new SetupError(`Cannot find the home directory of ${user}.`);
    return home;
}
function lastLine(text) {
    return text.trim().split('\n').pop() ?? '';
}

;// CONCATENATED MODULE: ./src/base/json.ts
/** A parsed JSON object (not an array, not null), whose fields can then be read one by one. */
function isRecord(value) {
    return typeof value === 'object' && value !== null && !Array.isArray(value);
}

;// CONCATENATED MODULE: ./src/runner/state.ts




/** The only commands the undo runs as root besides its file operations: one per service manager. */
const state_RESTART_COMMANDS = {
    systemd: ['systemctl', 'restart', 'nix-daemon.service'],
    launchd: ['launchctl', 'kickstart', '-k', 'system/org.nixos.nix-daemon']
};
/** Saved after every change, so a main step that dies half-way still leaves the post step a complete record. */
function state_saveJournal(journal) {
    core.saveState(StateKey.Journal, JSON.stringify(journal));
}
/**
 * The journal main saved, checked field by field (checkJournal); undefined when it saved none. Throws, saying why,
 * when the state is not a journal main could have written.
 */
function loadJournal(sharedFiles) {
    const text = lib_core/* getState */.Gu(inputs_constants/* StateKey */.zv.Journal);
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
    if (!isRecord(value) || !hasOnly(value, ['asRoot', 'token', 'undo']))
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
    if (!isRecord(entry))
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
    const save = () => core.saveState(StateKey.Children, JSON.stringify([...running.values()]));
    return {
        started: (pid, label) => {
            ended.delete(pid);
            void startTimeOf(pid).then(start => {
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
    const text = lib_core/* getState */.Gu(inputs_constants/* StateKey */.zv.Children);
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
        if (!isRecord(entry) || !hasOnly(entry, ['pid', 'start', 'label']))
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
function ssh_config_markedBlock(token, lines) {
    return `${beginMarker(token)}\n${lines}${endMarker(token)}\n`;
}
/**
 * The file agent finds a job's block by these marker lines (agent/). No `;` in them: Nix splits a machines file on it
 * before it drops comments.
 */
function beginMarker(token) {
    return `# ${MARKER} ${token}: begin (added by the nix-offload action, whose post step removes it)`;
}
function endMarker(token) {
    return `# ${MARKER} ${token}: end`;
}
/** A block's file operation, and its undo: this job's block out again, the daemon restarted as it was for it. */
function ssh_config_blockChange(step, token) {
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
        ...(undo.restart === undefined ? {} : { restart: [...state_RESTART_COMMANDS[undo.restart]] })
    };
}
/** The daemon reads nix.conf only when it starts: the file agent restarts it, as root, with this manager's command. */
function restartOf(manager) {
    if (manager === 'none')
        throw new Error('no service manager to restart the nix-daemon with');
    return manager;
}

// EXTERNAL MODULE: external "node:net"
var external_node_net_ = __webpack_require__(30);
;// CONCATENATED MODULE: ./src/runner/ssh-masters.ts




/**
 * The SSH masters' ControlPath in a plan's work directory (an `ssh-masters` step's `controlDir`): `%C`, a hash of the
 * connection, keeps the socket's path short, and the 0700 work directory keeps the sockets the connecting user's.
 */
function ssh_masters_controlPathIn(dir) {
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
function ssh_masters_mastersChange(step) {
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
class ssh_masters_SshMasters {
    #running = [];
    /**
     * Starts `ssh` with `command` and waits until it says it is ready: undefined then, with the master kept when `keep`
     * (with multiplexing) and otherwise closed, since the connection was only the check. What ssh came to otherwise.
     */
    async open(command, how) {
        const { keep, ...options } = how;
        const master = startCompanion('ssh', command, MASTER_READY, { ...options, track: 'ssh master' });
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
const ssh_masters_STORE_CHECK_TIMEOUT_MS = 60_000;
/**
 * The remote-store plan's check: `ssh -F <its config> <user@alias> true` as the runner user (the preflight has asked
 * the builder's store already, over the action's own SSH client). Without the runner's `nix` and the builder's
 * `nix-daemon --stdio` it is the shortest way to the master, on the path every small build waits on (bench/README.md,
 * "Figures behind choices in the code"). With multiplexing (a `controlPath`), the check is the master: this process's
 * own child, kept in `masters`.
 */
async function ssh_masters_sshCheck(target, masters, signal) {
    const { configFile, builder, controlPath } = target;
    const destination = sshDestination(builder.storeUri);
    const started = Date.now();
    const bound = { timeoutMs: ssh_masters_STORE_CHECK_TIMEOUT_MS, ...(signal === undefined ? {} : { signal }) };
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
        result = await runCommand('ssh', command, bound);
    }
    return sshReach(builder, command, result, started);
}
function sshReach(builder, command, result, started) {
    const reach = {
        storeUri: builder.storeUri,
        builder: label(builder),
        // As a shell would take it: the master's remote command is one quoted word.
        command: ['ssh', ...command.map(word => (/^[\w@%./:=+-]+$/.test(word) ? word : shellQuote(word)))].join(' '),
        ok: result === undefined || result.code === 0,
        ms: Date.now() - started
    };
    if (result !== undefined && !reach.ok)
        reach.error = stderrTail(result.stderr) || `exit code ${result.code}`;
    if (result?.timedOut === true)
        reach.error = `it hung: no answer within ${ssh_masters_STORE_CHECK_TIMEOUT_MS / 1000} s`;
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
        const socket = connect({ host: builder.host, port: builder.port, noDelay: true });
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

;// CONCATENATED MODULE: ./src/base/ssh-agent.ts

/**
 * An ssh-agent of the step's own, listening on a socket in a 0700 directory, given a private key on stdin: nothing on
 * disk holds the key, and the agent makes itself untraceable, so processes of the same user can have the key used
 * (through the socket) but not read it.
 */
/** The agents this process started, by socket. */
const agents = new Map();
/** A missing or broken ssh-agent answers at once; this only bounds one that never says it listens. */
const AGENT_START_TIMEOUT_MS = 30_000;
/**
 * Starts the agent in the foreground (`-D`: this process's child, which stopKeyAgent ends) and adds `key` to it. It
 * prints its socket's line once the socket listens (`-s`: in sh syntax whatever SHELL is). Once ready it does not keep
 * Node running, so it may outlive the step for later steps' builds; a later process empties it (emptyAgentCommand).
 */
async function ssh_agent_startKeyAgent(socket, key) {
    const agent = startCompanion('ssh-agent', ['-D', '-s', '-a', socket], agentReadyLine(socket), {
        timeoutMs: AGENT_START_TIMEOUT_MS,
        track: 'ssh-agent'
    });
    const ended = await agent.ready;
    if (ended !== undefined) {
        throw new Error(`ssh-agent could not start on ${socket}: ${stderrTail(ended.stderr) || `exit code ${ended.code}`}`);
    }
    agents.set(socket, agent);
    await runChecked('ssh-add', ['-q', '-'], { input: key, env: agentEnvironment(socket) });
}
/** Stops the agent this process started on `socket`, and its key with it: whether there was one. */
async function stopKeyAgent(socket) {
    const agent = agents.get(socket);
    if (agent === undefined)
        return false;
    agents.delete(socket);
    // It ignores its stdin: the SIGTERM that close sends after the wait ends it, and it removes its socket.
    await agent.close(0);
    return true;
}
/**
 * The command that empties an agent through its socket: for one this process did not start (the post step, after a
 * main step that ended without stopping its own).
 */
function emptyAgentCommand(socket) {
    return ['env', `SSH_AUTH_SOCK=${socket}`, 'ssh-add', '-D'];
}
function agentEnvironment(socket) {
    return { ...process.env, SSH_AUTH_SOCK: socket };
}
function agentReadyLine(socket) {
    return `SSH_AUTH_SOCK=${socket}; export SSH_AUTH_SOCK;`;
}

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
function work_dir_workDirChange(step, ownDir) {
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
async function work_dir_startKeyAgents(agents) {
    for (const agent of agents)
        await startKeyAgent(agent.socket, agent.key);
}
/**
 * Stops an agent that this process started. False when it did not (a main step that ended without stopping it): its
 * undo's file operation then empties it.
 */
function stopOwnKeyAgent(undo) {
    return stopKeyAgent(undo.socket);
}
/** The file operations that take the work directory back. */
function workDirUndoOps(undo) {
    if (undo.kind === 'remove-tree')
        return [{ op: 'remove-tree', path: undo.path }];
    // The agent of a main step that ended without stopping it: emptied, it holds nothing worth reaching.
    return [{ op: 'attempt', argv: emptyAgentCommand(undo.socket) }];
}

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
    const journal = await phase('configure', applyPlan(plan));
    const masters = new SshMasters();
    const stores = await phase('store check', pingStores(plan, facts, { masters, signal: options.signal }));
    return { stores, journal, masters };
}
/** Says whom the runner is configured for and how, each builder's alias, and the plan's warnings. */
function announcePlan(plan, facts) {
    const who = plan.path === 'remote-store'
        ? `${facts.userName} (its own nix opens the SSH connections, with ${plan.sshConfigFile ?? 'an ssh config'})`
        : plan.asRoot
            ? 'root (the nix-daemon opens the SSH connections)'
            : facts.userName;
    logInfo(`Configuring for ${who} (${plan.path}).`);
    for (const builder of plan.builders) {
        logInfo(`Builder ${builder.storeUri} → ${label(builder)} (${builder.systems.join(', ')})`);
    }
    for (const warning of plan.warnings)
        core.warning(warning, { title: 'nix-offload' });
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
        const results = await file_agent_fileOps(ops, { viaSudo: probe_viaSudo(journal), keepGoing: true });
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
            lib_core/* warning */.$e(`nix-offload could not undo its change to ${path}: ${result?.error ?? 'no answer'}`);
        });
    }
    catch (error) {
        outcome.failures++;
        lib_core/* warning */.$e(`nix-offload could not undo its changes: ${error instanceof Error ? error.message : String(error)}`);
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
        ? await runCommand('sudo', ['-n', nixPath, ...args], bound)
        : await runCommand(nixPath, args, { ...bound, env: nixEnvironment(plan, process.env) });
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
        reach.error = stderrTail(result.stderr);
    if (result.timedOut === true) {
        reach.error =
            `it hung: no answer within ${STORE_CHECK_TIMEOUT_MS / 1000} s (the builder accepted the SSH connection ` +
                'but its Nix did not answer: is its nix-daemon running and responsive?)';
    }
    return reach;
}
/**
 * The post step: stops what a killed main left running, then undoes, newest first, what main recorded, in one batch
 * of file operations. It warns instead of failing, so it never breaks a job.
 */
async function cleanup() {
    await stopLeftRunning();
    let journal;
    try {
        journal = loadJournal(sharedFiles());
    }
    catch (error) {
        lib_core/* warning */.$e(`nix-offload did not undo anything: the state its main step saved is not a journal it could have written ` +
            `(${error instanceof Error ? error.message : String(error)}), so nothing was touched. A process of the job ` +
            `may have written to GITHUB_STATE; remove any nix-offload-<token> directory and "# nix-offload <token>" ` +
            `block it left by hand.`);
        return;
    }
    if (journal === undefined || journal.undo.length === 0) {
        safe_text_logInfo(inputs_constants/* NOTHING_TO_UNDO */.x_);
        return;
    }
    const outcome = await undoJournal(journal);
    safe_text_logInfo(describeUndo(journal, outcome));
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
        lib_core/* warning */.$e(`nix-offload stopped no process: the record of what its main step started is not one it could have written ` +
            `(${error instanceof Error ? error.message : String(error)}).`);
        return;
    }
    const stopped = await stopProcesses(records, STOP_WAIT_MS);
    if (stopped.length === 0)
        return;
    const named = stopped.map(record => `${record.label} (pid ${record.pid})`).join(', ');
    safe_text_logInfo(`nix-offload: stopped ${stopped.length} process(es) main left running: ${named}.`);
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
