"""The demo pipeline (tools/run_demo.sh) and the tiny models and photos it (and the tests) use."""
