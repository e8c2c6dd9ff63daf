// Package check owns SPEC.md's invariant checker: the answers clients received (Answer), what
// they are checked against (Redis's credit stream, the coordinator's report) and the Verdict.
package check
