/* tp_crash built as a second image, so a reload to it is a real reload. */
#define TP_VARIANT "2.0.0"
#include "tp_crash.c"
