export const id = 966;
export const ids = [966];
export const modules = {

/***/ 966:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {


// EXPORTS
__webpack_require__.d(__webpack_exports__, {
  cleanup: () => (/* reexport */ cleanup)
});

// UNUSED EXPORTS: announcePlan, checkAll, closeStoreMasters, configureRunner, exportNixConfig, fileOps, isTrustedUser, machinesFileOp, makePlan, makeStorePlan, nixEnvironment, probeRunner, runnerRelease, saveJournal, settingsForRunner, undoJournal

// EXTERNAL MODULE: ./node_modules/@actions/core/lib/core.js + 11 modules
var lib_core = __webpack_require__(659);
// EXTERNAL MODULE: ./src/inputs/constants.ts
var constants = __webpack_require__(68);
// EXTERNAL MODULE: external "node:fs"
var external_node_fs_ = __webpack_require__(24);
// EXTERNAL MODULE: external "node:child_process"
var external_node_child_process_ = __webpack_require__(421);
;// CONCATENATED MODULE: ./src/base/process.ts

/** Runs a command to its end. A command that cannot be started (not found) rejects; any exit code resolves. */
function runCommand(command, args, options = {}) {
    return new Promise((resolve, reject) => {
        const child = (0,external_node_child_process_.spawn)(command, args, {
            env: childEnvironment(options.env ?? process.env),
            stdio: ['pipe', 'pipe', 'pipe']
        });
        const stdout = [];
        const stderr = [];
        const bounds = bound(child, options);
        child.stdout.on('data', (chunk) => stdout.push(chunk));
        // A build log can be gigabytes: with a listener, stderr is streamed and not kept.
        child.stderr.on('data', (chunk) => options.onStderr ? options.onStderr(chunk) : stderr.push(chunk));
        child.on('error', error => {
            bounds.release();
            reject(error);
        });
        child.on('close', code => {
            bounds.release();
            const result = {
                code: code ?? 1,
                stdout: Buffer.concat(stdout),
                stderr: Buffer.concat(stderr).toString('utf8')
            };
            if (bounds.timedOut())
                result.timedOut = true;
            resolve(result);
        });
        // A process that exits without reading its stdin is not an error of ours.
        child.stdin.on('error', () => undefined);
        const { input } = options;
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
    const child = spawn(command, args, {
        env: childEnvironment(options.env ?? process.env),
        stdio: transport === undefined ? ['pipe', 'pipe', 'pipe'] : [transport, transport, 'pipe']
    });
    // The child has its own copy of the socket (spawn returns once it runs): this one must neither read nor hold it.
    transport?.destroy();
    const ended = new Promise(resolve => {
        child.on('error', () => resolve(127));
        child.on('close', code => resolve(code ?? 1));
    });
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
        void ended.then(code => {
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
            ended.then(() => true),
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
 * Stops `child` (TERM, then KILL 5 s later) once `timeoutMs` has passed or `signal` aborts, until `release` is called:
 * the bounds of runCommand and startCompanion.
 */
function bound(child, options) {
    const stop = () => {
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
    };
    let timedOut = false;
    const timer = options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            stop();
        }, options.timeoutMs);
    const { signal } = options;
    if (signal?.aborted === true)
        stop();
    signal?.addEventListener('abort', stop, { once: true });
    return {
        stop,
        timedOut: () => timedOut,
        release: () => {
            clearTimeout(timer);
            signal?.removeEventListener('abort', stop);
        }
    };
}
/** Lets Node end while `handle` is still open: a child process, or one of its pipes (a net.Socket underneath). */
function unref(handle) {
    if ('unref' in handle && typeof handle.unref === 'function')
        handle.unref();
}
/** The last three lines of a process's stderr on one line: how a failure is quoted in a message. */
function stderrTail(stderr) {
    return stderr.trim().split('\n').slice(-3).join(' / ');
}
/** Runs a command that must succeed; the error carries its stderr. */
async function runChecked(command, args, options = {}) {
    const result = await runCommand(command, args, options);
    if (result.code !== 0) {
        const detail = result.stderr.trim().split('\n').slice(-5).join('\n');
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

;// CONCATENATED MODULE: ./src/runner/file-agent.ts



/**
 * Carries out the operations in order and says how each went. It stops at the first failure unless `keepGoing`.
 * Self-contained on purpose: as root it runs as `sudo node -e <its source>`, one process for a whole plan instead of a
 * sudo round trip per file (each costs tens of milliseconds), with the operations on stdin, never in argv.
 */
function runFileOps(context, ops, keepGoing) {
    const { files, spawn, lockDir, lockWaitMs } = context;
    const MADE = '# nix-offload: this file was made by the nix-offload action, and goes with the block of the last job\n';
    const MADE_WITH_DIR = '# nix-offload: this file and its directory were made by the nix-offload action, and go with the block of the last job\n';
    const beginLine = (token) => `# nix-offload ${token}: begin`;
    const endLine = (token) => `# nix-offload ${token}: end`;
    const sleep = (ms) => {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
    };
    const errorCode = (error) => typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : '';
    const writeAll = (fd, data) => {
        let offset = 0;
        while (offset < data.length)
            offset += files.writeSync(fd, data, offset, data.length - offset);
    };
    const write = (path, data, flags, mode) => {
        const fd = files.openSync(path, flags, mode);
        try {
            writeAll(fd, data);
        }
        finally {
            files.closeSync(fd);
        }
    };
    /**
     * A lock file per shared file, taken with O_EXCL and removed when done. One left by a holder that is gone (killed
     * half-way) is broken after 2 s; it is judged again once moved aside, so that a lock another job took meanwhile is
     * given back instead of broken.
     */
    const lock = (path) => {
        const lockPath = `${lockDir}/nix-offload-lock-${encodeURIComponent(path)}`;
        const abandoned = (file) => {
            const stat = files.statSync(file);
            if (stat.uid !== process.getuid?.())
                return true;
            if (Date.now() - stat.mtimeMs < 2_000)
                return false;
            const holder = Number(files.readFileSync(file, 'utf8'));
            if (!Number.isInteger(holder) || holder <= 0)
                return true;
            try {
                process.kill(holder, 0);
                return false;
            }
            catch (error) {
                return errorCode(error) === 'ESRCH';
            }
        };
        const started = Date.now();
        for (;;) {
            try {
                write(lockPath, Buffer.from(String(process.pid)), 'wx', 0o600);
                return () => files.unlinkSync(lockPath);
            }
            catch (error) {
                if (errorCode(error) !== 'EEXIST')
                    throw error;
            }
            let gone;
            try {
                gone = abandoned(lockPath);
            }
            catch {
                continue; // released meanwhile
            }
            if (gone) {
                const aside = `${lockPath}.${process.pid}`;
                try {
                    files.renameSync(lockPath, aside);
                }
                catch {
                    continue;
                }
                let really = true;
                try {
                    really = abandoned(aside);
                }
                catch {
                    // unreadable: broken all the same
                }
                if (!really) {
                    try {
                        files.linkSync(aside, lockPath);
                    }
                    catch {
                        // taken again already
                    }
                }
                files.unlinkSync(aside);
                continue;
            }
            if (Date.now() - started > lockWaitMs)
                throw new Error(`another nix-offload job has held ${lockPath} for over ${lockWaitMs / 1000} s`);
            sleep(25);
        }
    };
    /** Writes a temporary file beside `path` and renames it over, keeping the old file's mode and owner. */
    const replace = (path, text, mode) => {
        const existing = files.existsSync(path) ? files.statSync(path) : undefined;
        const temporary = `${path}.nix-offload-${process.pid}.tmp`;
        const fd = files.openSync(temporary, 'wx', 0o600);
        try {
            writeAll(fd, Buffer.from(text));
            if (existing !== undefined) {
                try {
                    files.fchownSync(fd, existing.uid, existing.gid);
                }
                catch (error) {
                    if (process.getuid?.() === 0)
                        throw error;
                }
            }
            files.fchmodSync(fd, existing === undefined ? mode : existing.mode & 0o7777);
            files.fsyncSync(fd);
        }
        finally {
            files.closeSync(fd);
        }
        files.renameSync(temporary, path);
    };
    const findBlock = (text, token) => {
        // The begin line at the start of a line: with a newline put before the text, its index is the line's own.
        const start = `\n${text}`.indexOf(`\n${beginLine(token)}`);
        if (start < 0)
            return undefined;
        const end = endLine(token);
        const endAt = text.indexOf(`\n${end}`, start);
        if (endAt < 0)
            return undefined;
        return [start, endAt + 1 + end.length];
    };
    const blockTokens = (text) => [...text.matchAll(/^# nix-offload ([0-9a-f]+): begin/gm)].map(match => match[1] ?? '');
    /** The setting lines of every block, as a set: what the daemon would see of all the jobs together. */
    const settingsOf = (text) => {
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
    };
    const restartIf = (argv, before, after) => {
        if (argv === undefined || settingsOf(before) === settingsOf(after))
            return false;
        const [command = 'true', ...args] = argv;
        const status = spawn(command, args, { stdio: 'ignore', timeout: 120_000 }).status;
        if (status !== 0)
            throw new Error(`${argv.join(' ')} failed (exit ${String(status)})`);
        return true;
    };
    const realPath = (path) => (files.existsSync(path) ? files.realpathSync(path) : path);
    const blockOp = (op) => {
        const path = realPath(op.path);
        const unlock = lock(path);
        try {
            const exists = files.existsSync(path);
            const before = exists ? files.readFileSync(path, 'utf8') : '';
            if (op.op === 'add-block') {
                if (findBlock(before, op.token) !== undefined)
                    return { ok: true };
                let text = before;
                if (!exists) {
                    const dir = path.slice(0, path.lastIndexOf('/')) || '/';
                    let madeDir = false;
                    if (!files.existsSync(dir)) {
                        files.mkdirSync(dir, { mode: 0o700 });
                        madeDir = true;
                    }
                    text = madeDir ? MADE_WITH_DIR : MADE;
                }
                // On top: the block and its final newline. At the end: a newline (ending the last line, which may have none),
                // then the block without one. Either way the block's own bytes are the same few lines to take away again.
                const block = op.text.replace(/\n$/, '');
                const after = op.at === 'top' ? `${block}\n${text}` : `${text}\n${block}`;
                replace(path, after, op.mode);
                return { ok: true, restarted: restartIf(op.restart, before, after) };
            }
            const found = findBlock(before, op.token);
            if (op.op === 'set-block') {
                if (found === undefined)
                    throw new Error(`no block of ${op.token} in ${path}`);
                replace(path, before.slice(0, found[0]) + op.text.replace(/\n$/, '') + before.slice(found[1]), 0o600);
                return { ok: true };
            }
            if (found === undefined)
                return { ok: true, others: blockTokens(before).length };
            const [start, stop] = found;
            const after = op.at === 'top'
                ? before.slice(0, start) + before.slice(before[stop] === '\n' ? stop + 1 : stop)
                : before.slice(0, before[start - 1] === '\n' ? start - 1 : start) + before.slice(stop);
            if (after === MADE || after === MADE_WITH_DIR) {
                files.unlinkSync(path);
                const dir = path.slice(0, path.lastIndexOf('/'));
                if (after === MADE_WITH_DIR && files.readdirSync(dir).length === 0)
                    files.rmdirSync(dir);
            }
            else
                replace(path, after, 0o600);
            const now = files.existsSync(path) ? files.readFileSync(path, 'utf8') : '';
            if (findBlock(now, op.token) !== undefined)
                throw new Error(`its block is still in ${path}`);
            return { ok: true, others: blockTokens(now).length, restarted: restartIf(op.restart, before, now) };
        }
        finally {
            unlock();
        }
    };
    const results = [];
    for (const op of ops) {
        try {
            if (op.op === 'read-if-exists') {
                const exists = files.existsSync(op.path);
                results.push(exists
                    ? { ok: true, exists, data: files.readFileSync(op.path).toString('base64') }
                    : { ok: true, exists });
            }
            else if (op.op === 'create') {
                const fd = files.openSync(op.path, 'wx', 0o600);
                files.closeSync(fd);
                write(op.path, Buffer.from(op.data, 'base64'), 'w', 0o600);
                const handle = files.openSync(op.path, 'r');
                files.fchmodSync(handle, op.mode);
                files.closeSync(handle);
                results.push({ ok: true });
            }
            else if (op.op === 'overwrite') {
                write(op.path, Buffer.from(op.data, 'base64'), 'w', 0o600);
                results.push({ ok: true });
            }
            else if (op.op === 'mkdir') {
                files.mkdirSync(op.path, { mode: 0o700 });
                results.push({ ok: true });
            }
            else if (op.op === 'remove-tree') {
                files.rmSync(op.path, { recursive: true, force: true });
                results.push({ ok: true });
            }
            else if (op.op === 'attempt') {
                const [command = 'true', ...args] = op.argv;
                results.push({ ok: spawn(command, args, { stdio: 'ignore', timeout: 10_000 }).status === 0 });
            }
            else {
                results.push(blockOp(op));
            }
        }
        catch (error) {
            results.push({ ok: false, error: error instanceof Error ? error.message : String(error) });
            if (!keepGoing)
                break;
        }
    }
    return results;
}
/** The agent as a Node program: `{ ops, keepGoing, lockDir, lockWaitMs }` as JSON on stdin, results on stdout. */
function agentProgram() {
    return ("const fs = require('fs'); const input = JSON.parse(fs.readFileSync(0, 'utf8')); " +
        `process.stdout.write(JSON.stringify((${runFileOps.toString()})({ files: fs, ` +
        "spawn: require('child_process').spawnSync, lockDir: input.lockDir, lockWaitMs: input.lockWaitMs }, " +
        'input.ops, input.keepGoing)))');
}
/** Runs the operations as root through one `sudo -n node` (or in this process when no sudo is needed). */
async function fileOps(ops, options) {
    if (ops.length === 0)
        return [];
    if (!options.viaSudo) {
        // In this process, children would inherit the step's inputs; under sudo, its env_reset drops them.
        const spawn = (command, args, spawnOptions) => external_node_child_process_.spawnSync(command, args, { ...spawnOptions, env: childEnvironment(process.env) });
        return runFileOps({ files: external_node_fs_, spawn, lockDir: options.lockDir ?? LOCK_DIR, lockWaitMs: LOCK_WAIT_MS }, ops, options.keepGoing);
    }
    const output = await runChecked('sudo', ['-n', process.execPath, '-e', agentProgram()], {
        input: JSON.stringify({
            ops,
            keepGoing: options.keepGoing,
            lockDir: options.lockDir ?? LOCK_DIR,
            lockWaitMs: LOCK_WAIT_MS
        }),
        // sudo itself may wait (a PAM module, a password prompt it cannot show): bounded like everything else.
        timeoutMs: 120_000 + LOCK_WAIT_MS
    });
    return parseResults(output.toString());
}
/**
 * One place every job on the host sees (not TMPDIR or RUNNER_TEMP, which may be a job's own). Creating with O_EXCL
 * follows no symlink, and a lock file not owned by the agent's user is never taken as held.
 */
const LOCK_DIR = '/tmp';
/** Long enough for another job's whole batch, daemon restart included. */
const LOCK_WAIT_MS = 180_000;
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

;// CONCATENATED MODULE: ./src/runner/state.ts


/** Saved after every change, so a main step that dies half-way still leaves the post step a complete record. */
function saveJournal(journal) {
    core.saveState(StateKey.Journal, JSON.stringify(journal));
}
function loadJournal() {
    const text = lib_core/* getState */.Gu(constants/* StateKey */.zv.Journal);
    if (text === '')
        return undefined;
    return JSON.parse(text);
}

;// CONCATENATED MODULE: ./src/runner/cleanup.ts




/**
 * The post step: undoes, newest first, what main recorded, in one batch of file operations. It warns instead of
 * failing, so it never breaks a job.
 */
async function cleanup() {
    let journal;
    try {
        journal = loadJournal();
    }
    catch (error) {
        lib_core/* warning */.$e(`nix-offload could not read what its main step changed, so it undid nothing: ${String(error)}`);
        return;
    }
    if (journal === undefined || journal.undo.length === 0) {
        lib_core/* info */.pq(constants/* NOTHING_TO_UNDO */.x_);
        return;
    }
    const outcome = await undoJournal(journal);
    lib_core/* info */.pq(describeUndo(journal, outcome));
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
/**
 * Undoes a journal, newest change first, in one batch of file operations: each block removal checks that none of
 * this job's block is left, and counts other jobs' blocks. A failure is a warning, never an error.
 */
async function undoJournal(journal) {
    const viaSudo = journal.asRoot && process.getuid?.() !== 0;
    const ops = [...journal.undo].reverse().flatMap(undoOps);
    const outcome = { failures: 0, othersLeft: new Map() };
    try {
        const results = await fileOps(ops, { viaSudo, keepGoing: true });
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
function undoOps(undo) {
    switch (undo.kind) {
        case 'remove-block':
            return [
                {
                    op: 'remove-block',
                    path: undo.path,
                    token: undo.token,
                    at: undo.at,
                    ...(undo.restart === undefined ? {} : { restart: undo.restart })
                }
            ];
        case 'remove-tree':
            return [{ op: 'remove-tree', path: undo.path }];
        case 'close-ssh-masters':
            // `ssh -O stop` through each alias (its config is still there): the master takes no new session and ends with
            // the last one, at once when idle. A build of another job that the shared daemon sent through this alias
            // (machines-file path) finishes instead of dying with it. A master that does not answer is killed by the control
            // path its command line names (a stopped one no longer names it; [c]: not to match the agent's own command line).
            return [
                ...undo.aliases.map((alias) => ({
                    op: 'attempt',
                    argv: [
                        'ssh',
                        ...(undo.configFile === undefined ? [] : ['-F', undo.configFile]),
                        '-O',
                        'stop',
                        alias
                    ]
                })),
                { op: 'attempt', argv: ['pkill', '-f', '--', `${undo.path}/[c]m-`] }
            ];
    }
}

;// CONCATENATED MODULE: ./src/runner/index.ts
/**
 * runner: the runner's side. The read-only probe of its Nix (probe.ts), the pure plan of every file to write and
 * command to run (plan.ts, rendering in render.ts), applying it with a journal of undo steps (apply.ts, through the
 * batched sudo file agent), the check that root's nix-daemon reaches each builder through what was written
 * (store-ping.ts), the state saved for the post step (state.ts), and the post step's undo (cleanup.ts).
 * May import: base, inputs, nix.
 */









/***/ })

};
