"""The probes' dialect-free vocabulary (pure): what a probe asks and sees (`model`), JSON
helpers (`fields`) and the test image (`image`). Each dialect's probe wire is its
package's `probe` module; `louter/probes/` runs them over HTTP."""
