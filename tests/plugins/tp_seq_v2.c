/* tp_seq built as a second version, to show that a reload runs new code. */
#define TP_VARIANT "2.0.0"
#include "tp_seq.c"
