export const id = 781;
export const ids = [781];
export const modules = {

/***/ 4781:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

__webpack_require__.r(__webpack_exports__);
/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   AnnotatedFailure: () => (/* reexport safe */ _failure_js__WEBPACK_IMPORTED_MODULE_3__.rc),
/* harmony export */   Phase: () => (/* reexport safe */ _step_log_js__WEBPACK_IMPORTED_MODULE_5__.a0),
/* harmony export */   StepError: () => (/* reexport safe */ _failure_js__WEBPACK_IMPORTED_MODULE_3__.zg),
/* harmony export */   childEnvironment: () => (/* reexport safe */ _process_js__WEBPACK_IMPORTED_MODULE_0__.Qc),
/* harmony export */   emptyAgentCommand: () => (/* reexport safe */ _ssh_agent_js__WEBPACK_IMPORTED_MODULE_2__.Ml),
/* harmony export */   endGroup: () => (/* reexport safe */ _step_log_js__WEBPACK_IMPORTED_MODULE_5__.N4),
/* harmony export */   failStep: () => (/* reexport safe */ _failure_js__WEBPACK_IMPORTED_MODULE_3__.vy),
/* harmony export */   inGroup: () => (/* reexport safe */ _step_log_js__WEBPACK_IMPORTED_MODULE_5__.HB),
/* harmony export */   isRecord: () => (/* reexport safe */ _json_js__WEBPACK_IMPORTED_MODULE_7__.u),
/* harmony export */   logDebug: () => (/* reexport safe */ _step_log_js__WEBPACK_IMPORTED_MODULE_5__.MD),
/* harmony export */   logError: () => (/* reexport safe */ _step_log_js__WEBPACK_IMPORTED_MODULE_5__.vV),
/* harmony export */   logInfo: () => (/* reexport safe */ _step_log_js__WEBPACK_IMPORTED_MODULE_5__.fH),
/* harmony export */   logLine: () => (/* reexport safe */ _step_log_js__WEBPACK_IMPORTED_MODULE_5__.BP),
/* harmony export */   logNotice: () => (/* reexport safe */ _step_log_js__WEBPACK_IMPORTED_MODULE_5__.n$),
/* harmony export */   logWarning: () => (/* reexport safe */ _step_log_js__WEBPACK_IMPORTED_MODULE_5__.FF),
/* harmony export */   phase: () => (/* reexport safe */ _timing_js__WEBPACK_IMPORTED_MODULE_6__.O),
/* harmony export */   runChecked: () => (/* reexport safe */ _process_js__WEBPACK_IMPORTED_MODULE_0__.X4),
/* harmony export */   runCommand: () => (/* reexport safe */ _process_js__WEBPACK_IMPORTED_MODULE_0__.d1),
/* harmony export */   safeLine: () => (/* reexport safe */ _safe_text_js__WEBPACK_IMPORTED_MODULE_4__.o),
/* harmony export */   safeText: () => (/* reexport safe */ _safe_text_js__WEBPACK_IMPORTED_MODULE_4__.H),
/* harmony export */   shellQuote: () => (/* reexport safe */ _process_js__WEBPACK_IMPORTED_MODULE_0__.ZL),
/* harmony export */   startCompanion: () => (/* reexport safe */ _process_js__WEBPACK_IMPORTED_MODULE_0__.tV),
/* harmony export */   startGroup: () => (/* reexport safe */ _step_log_js__WEBPACK_IMPORTED_MODULE_5__.Oh),
/* harmony export */   startKeyAgent: () => (/* reexport safe */ _ssh_agent_js__WEBPACK_IMPORTED_MODULE_2__.Jr),
/* harmony export */   startTimeOf: () => (/* reexport safe */ _processes_js__WEBPACK_IMPORTED_MODULE_1__.P),
/* harmony export */   stderrTail: () => (/* reexport safe */ _process_js__WEBPACK_IMPORTED_MODULE_0__.be),
/* harmony export */   stopCommands: () => (/* reexport safe */ _step_log_js__WEBPACK_IMPORTED_MODULE_5__.FN),
/* harmony export */   stopKeyAgent: () => (/* reexport safe */ _ssh_agent_js__WEBPACK_IMPORTED_MODULE_2__.jz),
/* harmony export */   stopProcesses: () => (/* reexport safe */ _processes_js__WEBPACK_IMPORTED_MODULE_1__.a),
/* harmony export */   trackChildren: () => (/* reexport safe */ _process_js__WEBPACK_IMPORTED_MODULE_0__.j8),
/* harmony export */   writeSummary: () => (/* reexport safe */ _step_log_js__WEBPACK_IMPORTED_MODULE_5__.Sy)
/* harmony export */ });
/* harmony import */ var _process_js__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(1524);
/* harmony import */ var _processes_js__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(8184);
/* harmony import */ var _ssh_agent_js__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(9847);
/* harmony import */ var _failure_js__WEBPACK_IMPORTED_MODULE_3__ = __webpack_require__(2571);
/* harmony import */ var _safe_text_js__WEBPACK_IMPORTED_MODULE_4__ = __webpack_require__(5870);
/* harmony import */ var _step_log_js__WEBPACK_IMPORTED_MODULE_5__ = __webpack_require__(880);
/* harmony import */ var _timing_js__WEBPACK_IMPORTED_MODULE_6__ = __webpack_require__(2035);
/* harmony import */ var _json_js__WEBPACK_IMPORTED_MODULE_7__ = __webpack_require__(3659);
/**
 * base: what every stage may use, and nothing about Nix or builders: starting processes (the one place that spawns,
 * with no echo of what it runs) and stopping those a killed main step left running, printing the step's log (the one
 * place that prints: a group per phase, annotations outside them), an ssh-agent that holds a private key off the
 * disk, how the step fails (each error annotated once), timing a phase for the debug log, and a guard for parsed JSON
 * objects.
 * May import: nothing of the action's own.
 */










/***/ })

};
