/* tp_seq built so that restore refuses every state: reload must roll back. */
#define TP_VARIANT "9.9.9-refuse"
#define TP_REFUSE_RESTORE 1
#include "tp_seq.c"
