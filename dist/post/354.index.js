export const id = 354;
export const ids = [354];
export const modules = {

/***/ 2571:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   rc: () => (/* binding */ AnnotatedFailure),
/* harmony export */   vy: () => (/* binding */ failStep),
/* harmony export */   zg: () => (/* binding */ StepError)
/* harmony export */ });
/* harmony import */ var _actions_core__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(1659);
/* harmony import */ var _step_log_js__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(880);


/**
 * How a step fails: with exactly one error annotation per error. `core.setFailed` is not used, because it writes an
 * untitled annotation of its own, which GitHub shows beside the titled one that said the same thing.
 */
/** An error that fails the step, annotated under its title (e.g. `nix-offload: input port`). */
class StepError extends Error {
    title;
    constructor(message, title) {
        super(message);
        this.title = title;
        this.name = 'StepError';
    }
}
/**
 * A failure whose errors were each annotated where they were found (one per builder, one per derivation): failing the
 * step writes nothing more. Its message sums them up for code that reads it (the reason given for `fallback: local`).
 */
class AnnotatedFailure extends Error {
    constructor(message) {
        super(message);
        this.name = 'AnnotatedFailure';
    }
}
/** The title of an error the action did not expect: a bug, or a failure nothing else names. */
const UNEXPECTED_TITLE = 'nix-offload';
/**
 * Fails the step for `error`: its one annotation, unless it was written already, and the failing exit code. An error
 * the action did not expect (a bug) also has its stack in the log, for the report of it. Both come after the last
 * phase's group has ended.
 */
function failStep(error) {
    process.exitCode = _actions_core__WEBPACK_IMPORTED_MODULE_0__/* .ExitCode */ .yU.Failure;
    (0,_step_log_js__WEBPACK_IMPORTED_MODULE_1__/* .endGroup */ .N4)();
    if (error instanceof AnnotatedFailure)
        return;
    if (error instanceof StepError) {
        (0,_step_log_js__WEBPACK_IMPORTED_MODULE_1__/* .logError */ .vV)(error.message, { title: error.title });
        return;
    }
    if (error instanceof Error && error.stack !== undefined)
        (0,_step_log_js__WEBPACK_IMPORTED_MODULE_1__/* .logInfo */ .fH)(error.stack);
    (0,_step_log_js__WEBPACK_IMPORTED_MODULE_1__/* .logError */ .vV)(error instanceof Error ? error.message : String(error), { title: UNEXPECTED_TITLE });
}


/***/ }),

/***/ 3659:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   u: () => (/* binding */ isRecord)
/* harmony export */ });
/** A parsed JSON object (not an array, not null), whose fields can then be read one by one. */
function isRecord(value) {
    return typeof value === 'object' && value !== null && !Array.isArray(value);
}


/***/ }),

/***/ 1524:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   Qc: () => (/* binding */ childEnvironment),
/* harmony export */   X4: () => (/* binding */ runChecked),
/* harmony export */   ZL: () => (/* binding */ shellQuote),
/* harmony export */   be: () => (/* binding */ stderrTail),
/* harmony export */   d1: () => (/* binding */ runCommand),
/* harmony export */   j8: () => (/* binding */ trackChildren),
/* harmony export */   tV: () => (/* binding */ startCompanion)
/* harmony export */ });
/* unused harmony exports DEFAULT_TIMEOUT_MS, DRAIN_MS */
/* harmony import */ var node_child_process__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(1421);
/* harmony import */ var node_child_process__WEBPACK_IMPORTED_MODULE_0___default = /*#__PURE__*/__webpack_require__.n(node_child_process__WEBPACK_IMPORTED_MODULE_0__);
/* harmony import */ var _safe_text_js__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(5870);


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
function runCommand(command, args, options = {}) {
    return new Promise((resolve, reject) => {
        const child = (0,node_child_process__WEBPACK_IMPORTED_MODULE_0__.spawn)(command, args, {
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
function startCompanion(command, args, readyLine, options = {}) {
    const { transport } = options;
    const child = (0,node_child_process__WEBPACK_IMPORTED_MODULE_0__.spawn)(command, args, {
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
function stderrTail(stderr) {
    return stderr
        .trim()
        .split('\n')
        .slice(-3)
        .map(line => (0,_safe_text_js__WEBPACK_IMPORTED_MODULE_1__/* .safeLine */ .o)(line))
        .join(' / ');
}
/** Runs a command that must succeed; the error carries its stderr. */
async function runChecked(command, args, options = {}) {
    const result = await runCommand(command, args, options);
    if (result.code !== 0) {
        const detail = (0,_safe_text_js__WEBPACK_IMPORTED_MODULE_1__/* .safeText */ .H)(result.stderr.trim().split('\n').slice(-5).join('\n'));
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
function shellQuote(word) {
    return `'${word.replace(/'/g, `'\\''`)}'`;
}


/***/ }),

/***/ 8184:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   P: () => (/* binding */ startTimeOf),
/* harmony export */   a: () => (/* binding */ stopProcesses)
/* harmony export */ });
/* harmony import */ var node_fs__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(3024);
/* harmony import */ var node_fs__WEBPACK_IMPORTED_MODULE_0___default = /*#__PURE__*/__webpack_require__.n(node_fs__WEBPACK_IMPORTED_MODULE_0__);
/* harmony import */ var _process_js__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(1524);


/** When process `pid` started, as ProcessRecord's `start`; undefined when it no longer runs. */
async function startTimeOf(pid) {
    if (process.platform === 'linux')
        return procEntry(String(pid))?.start;
    const result = await (0,_process_js__WEBPACK_IMPORTED_MODULE_1__/* .runCommand */ .d1)('ps', ['-o', 'lstart=', '-p', String(pid)], { env: PS_ENV });
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
    const starts = await Promise.all(entries.map(entry => startTimeOf(entry.pid)));
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
        return (0,node_fs__WEBPACK_IMPORTED_MODULE_0__.readdirSync)('/proc')
            .filter(name => /^\d+$/.test(name))
            .map(procEntry)
            .filter(entry => entry !== undefined);
    }
    const result = await (0,_process_js__WEBPACK_IMPORTED_MODULE_1__/* .runCommand */ .d1)('ps', ['-A', '-o', 'pid=,ppid=,uid=,lstart='], { env: PS_ENV });
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
        const stat = (0,node_fs__WEBPACK_IMPORTED_MODULE_0__.readFileSync)(`/proc/${pid}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        const start = fields[19];
        const ppid = Number(fields[1]);
        // A zombie has ended: only its parent's wait is missing.
        if (start === undefined || !Number.isInteger(ppid) || fields[0] === 'Z')
            return undefined;
        return { pid: Number(pid), ppid, uid: (0,node_fs__WEBPACK_IMPORTED_MODULE_0__.statSync)(`/proc/${pid}`).uid, start };
    }
    catch {
        return undefined;
    }
}


/***/ }),

/***/ 5870:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   H: () => (/* binding */ safeText),
/* harmony export */   o: () => (/* binding */ safeLine)
/* harmony export */ });
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
function safeLine(text) {
    return breakCommands(text.replace(CONTROL, visible));
}
/** Outside text of several lines (an error's tail, a message): its `\n` and tabs kept, every other control escaped. */
function safeText(text) {
    return breakCommands(text.replace(CONTROL_BUT_LINES, visible));
}


/***/ }),

/***/ 9847:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   Jr: () => (/* binding */ startKeyAgent),
/* harmony export */   Ml: () => (/* binding */ emptyAgentCommand),
/* harmony export */   jz: () => (/* binding */ stopKeyAgent)
/* harmony export */ });
/* harmony import */ var _process_js__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(1524);

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
async function startKeyAgent(socket, key) {
    const agent = (0,_process_js__WEBPACK_IMPORTED_MODULE_0__/* .startCompanion */ .tV)('ssh-agent', ['-D', '-s', '-a', socket], agentReadyLine(socket), {
        timeoutMs: AGENT_START_TIMEOUT_MS,
        track: 'ssh-agent'
    });
    const ended = await agent.ready;
    if (ended !== undefined) {
        throw new Error(`ssh-agent could not start on ${socket}: ${(0,_process_js__WEBPACK_IMPORTED_MODULE_0__/* .stderrTail */ .be)(ended.stderr) || `exit code ${ended.code}`}`);
    }
    agents.set(socket, agent);
    await (0,_process_js__WEBPACK_IMPORTED_MODULE_0__/* .runChecked */ .X4)('ssh-add', ['-q', '-'], { input: key, env: agentEnvironment(socket) });
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


/***/ }),

/***/ 880:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   BP: () => (/* binding */ logLine),
/* harmony export */   FF: () => (/* binding */ logWarning),
/* harmony export */   FN: () => (/* binding */ stopCommands),
/* harmony export */   HB: () => (/* binding */ inGroup),
/* harmony export */   MD: () => (/* binding */ logDebug),
/* harmony export */   N4: () => (/* binding */ endGroup),
/* harmony export */   Oh: () => (/* binding */ startGroup),
/* harmony export */   Sy: () => (/* binding */ writeSummary),
/* harmony export */   a0: () => (/* binding */ Phase),
/* harmony export */   fH: () => (/* binding */ logInfo),
/* harmony export */   n$: () => (/* binding */ logNotice),
/* harmony export */   vV: () => (/* binding */ logError)
/* harmony export */ });
/* unused harmony exports CONTINUED, StepLog */
/* harmony import */ var _actions_core__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(1659);
/* harmony import */ var node_crypto__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(7598);
/* harmony import */ var node_crypto__WEBPACK_IMPORTED_MODULE_1___default = /*#__PURE__*/__webpack_require__.n(node_crypto__WEBPACK_IMPORTED_MODULE_1__);
/* harmony import */ var _safe_text_js__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(5870);



/**
 * The step's log, folded: each phase's lines in a group of its own, the groups one after the other, since GitHub
 * does not nest them. A group opens with its phase's first line, so a phase that prints nothing leaves no empty fold.
 * Annotations stay outside every group, so that a folded log still shows them: one ends the open group, and the
 * phase's next line opens it again, marked continued. While a build's log is relayed, workflow commands are stopped
 * (stopCommands), and a group or an annotation printed then would be read as text: it waits for the resume. Everything
 * the action prints goes through here.
 */
/** The phases of a step, each a group of that title; a title may name a builder (`Build on nixbuilder@b1:22`). */
var Phase;
(function (Phase) {
    Phase["Preflight"] = "Preflight";
    Phase["Configure"] = "Configure";
    Phase["Build"] = "Build";
    Phase["CopyBack"] = "Copy back";
    Phase["Push"] = "Push";
    Phase["Proof"] = "Proof";
    Phase["Verdict"] = "Verdict";
    Phase["Undo"] = "Undo";
})(Phase || (Phase = {}));
/** What a group opened again after an annotation adds to its title. */
const CONTINUED = ' (continued)';
/** The folded log of one step (one process): what group is open, and whether commands are stopped. */
class StepLog {
    /** The phase printing now; its group opens with its next line. */
    title;
    open = false;
    /** An annotation ended the phase's group: it opens again as continued. */
    interrupted = false;
    /** While a build's log is relayed: the resume token, and how many relays share it. */
    relay;
    /** Group changes and annotations that came while commands were stopped. */
    held = [];
    /** The phase from now on, ending the one before: its lines go into a group of `title`. */
    begin(title) {
        this.whenCommandsRun(() => {
            this.close();
            this.title = (0,_safe_text_js__WEBPACK_IMPORTED_MODULE_2__/* .safeLine */ .o)(title);
            this.interrupted = false;
        });
    }
    /** The end of the phase: its group, if open, ends, and later lines are in none. */
    end() {
        this.whenCommandsRun(() => {
            this.close();
            this.title = undefined;
        });
    }
    /** One phase, whose group ends whether `work` succeeds or throws. */
    async within(title, work) {
        this.begin(title);
        try {
            return await work();
        }
        finally {
            this.end();
        }
    }
    /** A line that is safe to print as it is (the relayed log, or text made safe), in the phase's group. */
    line(text) {
        if (this.relay === undefined && this.title !== undefined && !this.open) {
            _actions_core__WEBPACK_IMPORTED_MODULE_0__/* .startGroup */ .Oh(this.interrupted ? `${this.title}${CONTINUED}` : this.title);
            this.open = true;
        }
        _actions_core__WEBPACK_IMPORTED_MODULE_0__/* .info */ .pq(text);
    }
    /** An annotation, outside every group. */
    annotate(kind, message, properties) {
        this.whenCommandsRun(() => {
            this.interrupt();
            if (kind === 'error')
                _actions_core__WEBPACK_IMPORTED_MODULE_0__/* .error */ .z3(message, properties);
            else if (kind === 'warning')
                _actions_core__WEBPACK_IMPORTED_MODULE_0__/* .warning */ .$e(message, properties);
            else
                _actions_core__WEBPACK_IMPORTED_MODULE_0__/* .notice */ .lm(message, properties);
        });
    }
    /** The job summary, written once the open group ended. */
    async summary(markdown) {
        this.whenCommandsRun(() => this.interrupt());
        await _actions_core__WEBPACK_IMPORTED_MODULE_0__/* .summary */ .z.addRaw(markdown).write();
    }
    /** A debug line (shown with ACTIONS_STEP_DEBUG), a workflow command too. */
    debug(text) {
        this.whenCommandsRun(() => _actions_core__WEBPACK_IMPORTED_MODULE_0__/* .debug */ .Yz(text));
    }
    /**
     * Stops workflow commands, for a log from outside (a builder's build log may hold `::add-mask::` or `::error::`):
     * the phase's group opens first, as nothing can open it until the returned function resumes them.
     */
    stopCommands() {
        if (this.relay === undefined) {
            const token = (0,node_crypto__WEBPACK_IMPORTED_MODULE_1__.randomBytes)(16).toString('hex');
            this.line(`::stop-commands::${token}`);
            this.relay = { token, count: 1 };
        }
        else {
            this.relay.count += 1;
        }
        let resumed = false;
        return () => {
            const relay = this.relay;
            if (resumed || relay === undefined)
                return;
            resumed = true;
            relay.count -= 1;
            if (relay.count > 0)
                return;
            _actions_core__WEBPACK_IMPORTED_MODULE_0__/* .info */ .pq(`::${relay.token}::`);
            this.relay = undefined;
            for (const held of this.held.splice(0))
                held();
        };
    }
    whenCommandsRun(command) {
        if (this.relay === undefined)
            command();
        else
            this.held.push(command);
    }
    interrupt() {
        if (!this.open)
            return;
        this.close();
        this.interrupted = true;
    }
    close() {
        if (!this.open)
            return;
        _actions_core__WEBPACK_IMPORTED_MODULE_0__/* .endGroup */ .N4();
        this.open = false;
    }
}
/** The step's own log: the one StepLog of this process. */
const stepLog = new StepLog();
/** From now on the lines go into `title`'s group; the group before ends. */
function startGroup(title) {
    stepLog.begin(title);
}
/** Ends the phase's group: later lines are in none. */
function endGroup() {
    stepLog.end();
}
/** One phase in a group of its own, which ends even when the phase throws. */
function inGroup(title, work) {
    return stepLog.within(title, work);
}
/** A line that is safe as it is: a relayed build log line, or one made by safeLine or safeText. */
function logLine(line) {
    stepLog.line(line);
}
/** Text that may hold text from outside (a builder, the evaluation, Nix's log, saved state), made safe to print. */
function logInfo(text) {
    stepLog.line((0,_safe_text_js__WEBPACK_IMPORTED_MODULE_2__/* .safeText */ .H)(text));
}
/** An error annotation, outside every group (`core.error` escapes its message). */
function logError(message, properties) {
    stepLog.annotate('error', message, properties);
}
/** A warning annotation, outside every group. */
function logWarning(message, properties) {
    stepLog.annotate('warning', message, properties);
}
/** A notice annotation, outside every group. */
function logNotice(message, properties) {
    stepLog.annotate('notice', message, properties);
}
/** A debug line, for a phase's timing. */
function logDebug(text) {
    stepLog.debug(text);
}
/** Writes the job summary, once the open group ended. */
function writeSummary(markdown) {
    return stepLog.summary(markdown);
}
/** Stops workflow commands while a log from outside is relayed; call what it returns to resume them. */
function stopCommands() {
    return stepLog.stopCommands();
}


/***/ }),

/***/ 2035:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   O: () => (/* binding */ phase)
/* harmony export */ });
/* harmony import */ var _step_log_js__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(880);

/**
 * Awaits one phase of the step and logs how long it took, and when it ended since Node started, as a debug line
 * (shown with ACTIONS_STEP_DEBUG): where a slow step spends its time.
 */
async function phase(name, work) {
    const started = performance.now();
    try {
        return await work;
    }
    finally {
        const now = performance.now();
        (0,_step_log_js__WEBPACK_IMPORTED_MODULE_0__/* .logDebug */ .MD)(`${name}: ${Math.round(now - started)} ms (ended ${Math.round(now)} ms after Node started)`);
    }
}


/***/ })

};
