// Package trust owns per-agent trust: the signals an agent's behaviour
// produces, the score model that turns them into a score from 0 to 100 and
// a level (untrusted, limited, standard, trusted, elevated), and the
// anomaly detectors that compare an agent with its own baseline.
//
// Everything here is pure and deterministic: no clocks (every function
// takes the event time or now), no goroutines, no storage, no I/O. State
// and Baseline are plain values with exported fields that encode to JSON,
// so the caller persists them and updates them incrementally: State.Apply
// costs O(1) per event and Baseline.Observe a bounded scan, with no look
// at history. Recompute folds a sequence of events into the State the
// incremental path would have reached.
//
// docs/trust.md gives the model's formula, the default weights and
// thresholds with their reasons, and every detector.
//
// Service is the exception to "no storage": it keeps the states, baselines
// and findings in package storage and runs the detectors at each flush.
// The package must not import net/http or the domain packages (agents,
// users): callers translate their records into Events and Observations.
package trust
