// Package panel drives the visitor's whole interface, one push button and a
// status LED (DESIGN §5), over periph.io GPIO pins or, when the panel section
// of the configuration says simulate = true, over in-memory pins: it debounces the button (leading edge, ~30 ms),
// turns presses into gestures (short < 1.5 s, long ≥ 3 s, very long ≥ 10 s;
// a release between 1.5 s and 3 s is ambiguous and ignored, a very long
// press is reported as soon as it reaches 10 s so that the technician knows
// to let go, the others on release), acknowledges every press with a 100 ms
// flicker at once, and blinks the LED in software (no PWM) in the pattern of
// the most urgent active state, from top to bottom:
//
//	priority  pattern      LED                          why it wins, for the visitor
//	1         identify     8 Hz blink for 10 s           someone is looking for this box right now; short
//	2         acknowledge  inverted for 100 ms           "I heard you": must show on every press, even on a fault
//	3         fault        4 Hz blink                    nothing can work until staff come: hiding it behind
//	                                                     "working" would make the visitor wait for nothing
//	4         working      1 Hz blink                    the visitor's own copy or scan is under way
//	5         held         double flash every 2 s        prints wait for a press; the current work comes first
//	6         ready        steady on                     nothing else to say
//	-         off          off                           the agent is stopped (before Run, after Close)
//
// Every blinking pattern starts lit at the moment its state starts, and the
// acknowledgement inverts whatever the LED shows at the press, so that a
// press always changes the LED at once. An optional second LED is lit while
// a fault is set, whatever the first one shows. [Panel.Press] (for
// `relais-agent ctl press` and the simulator) holds a simulated button for
// the gesture's time, through the same reader and state machine as the real
// one. [Dispatcher] runs one gesture's handler at a time with the LED
// working; a gesture made meanwhile has been acknowledged and is ignored.
// Time comes from an injected clockwork clock, so that tests drive debounce,
// thresholds and blinks exactly; output pins are never read back.
package panel
