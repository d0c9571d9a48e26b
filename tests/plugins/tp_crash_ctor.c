/* tp_crash built with a constructor that crashes: dlopen itself runs plugin
 * code, and the crash line must name it (crash_in is ignored). */
#include <stdint.h>

static volatile int zero_ctor;

__attribute__((constructor)) static void tp_crash_at_load(void)
{
    *(volatile int *)(uintptr_t)(16 + zero_ctor) = 1; /* the never-mapped first page */
}

#define TP_VARIANT "1.0.0-ctor"
#include "tp_crash.c"
