/* A shared object that is not a plugin: it lacks arb_plugin_entry. */
__attribute__((visibility("default"))) int tp_not_the_entry(void);
int tp_not_the_entry(void) { return 42; }
