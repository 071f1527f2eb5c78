export const id = 781;
export const ids = [781];
export const modules = {

/***/ 4781:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

__webpack_require__.r(__webpack_exports__);
/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   AnnotatedFailure: () => (/* reexport safe */ _failure_js__WEBPACK_IMPORTED_MODULE_3__.rc),
/* harmony export */   StepError: () => (/* reexport safe */ _failure_js__WEBPACK_IMPORTED_MODULE_3__.zg),
/* harmony export */   childEnvironment: () => (/* reexport safe */ _process_js__WEBPACK_IMPORTED_MODULE_0__.Qc),
/* harmony export */   emptyAgentCommand: () => (/* reexport safe */ _ssh_agent_js__WEBPACK_IMPORTED_MODULE_2__.Ml),
/* harmony export */   failStep: () => (/* reexport safe */ _failure_js__WEBPACK_IMPORTED_MODULE_3__.vy),
/* harmony export */   isRecord: () => (/* reexport safe */ _json_js__WEBPACK_IMPORTED_MODULE_6__.u),
/* harmony export */   logInfo: () => (/* reexport safe */ _safe_text_js__WEBPACK_IMPORTED_MODULE_4__.fH),
/* harmony export */   phase: () => (/* reexport safe */ _timing_js__WEBPACK_IMPORTED_MODULE_5__.O),
/* harmony export */   runChecked: () => (/* reexport safe */ _process_js__WEBPACK_IMPORTED_MODULE_0__.X4),
/* harmony export */   runCommand: () => (/* reexport safe */ _process_js__WEBPACK_IMPORTED_MODULE_0__.d1),
/* harmony export */   safeLine: () => (/* reexport safe */ _safe_text_js__WEBPACK_IMPORTED_MODULE_4__.om),
/* harmony export */   safeText: () => (/* reexport safe */ _safe_text_js__WEBPACK_IMPORTED_MODULE_4__.Hk),
/* harmony export */   shellQuote: () => (/* reexport safe */ _process_js__WEBPACK_IMPORTED_MODULE_0__.ZL),
/* harmony export */   startCompanion: () => (/* reexport safe */ _process_js__WEBPACK_IMPORTED_MODULE_0__.tV),
/* harmony export */   startKeyAgent: () => (/* reexport safe */ _ssh_agent_js__WEBPACK_IMPORTED_MODULE_2__.Jr),
/* harmony export */   startTimeOf: () => (/* reexport safe */ _processes_js__WEBPACK_IMPORTED_MODULE_1__.P),
/* harmony export */   stderrTail: () => (/* reexport safe */ _process_js__WEBPACK_IMPORTED_MODULE_0__.be),
/* harmony export */   stopKeyAgent: () => (/* reexport safe */ _ssh_agent_js__WEBPACK_IMPORTED_MODULE_2__.jz),
/* harmony export */   stopProcesses: () => (/* reexport safe */ _processes_js__WEBPACK_IMPORTED_MODULE_1__.a),
/* harmony export */   trackChildren: () => (/* reexport safe */ _process_js__WEBPACK_IMPORTED_MODULE_0__.j8)
/* harmony export */ });
/* harmony import */ var _process_js__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(1524);
/* harmony import */ var _processes_js__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(8184);
/* harmony import */ var _ssh_agent_js__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(9847);
/* harmony import */ var _failure_js__WEBPACK_IMPORTED_MODULE_3__ = __webpack_require__(2571);
/* harmony import */ var _safe_text_js__WEBPACK_IMPORTED_MODULE_4__ = __webpack_require__(5870);
/* harmony import */ var _timing_js__WEBPACK_IMPORTED_MODULE_5__ = __webpack_require__(2035);
/* harmony import */ var _json_js__WEBPACK_IMPORTED_MODULE_6__ = __webpack_require__(3659);
/**
 * base: what every stage may use, and nothing about Nix or builders: starting processes (the one place that spawns,
 * with no echo of what it runs) and stopping those a killed main step left running, an ssh-agent that holds a private
 * key off the disk, how the step fails (each error annotated once), timing a phase for the debug log, and a guard for parsed JSON objects.
 * May import: nothing of the action's own.
 */









/***/ })

};
