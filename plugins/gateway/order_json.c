/*
 * order_json.c -- parse and validate an order body (see order_json.h). The
 * order of the checks is part of the contract: shape first (JSON, object,
 * unknown fields), then each field in turn, then the instrument's rules, so a
 * body with several faults always reports the same code.
 */
#include "order_json.h"

#include "decimal.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

__attribute__((format(printf, 3, 4))) static int fail(gw_error *err, const char *code,
                                                      const char *fmt, ...)
{
    err->status = 400;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}

int gw_client_id_valid(const char *s, size_t len)
{
    if (len == 0 || len > GW_CLIENT_ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return 0;
    }
    return 1;
}

int gw_parse_order_id(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (v == 0)
        return -1;
    *out = v;
    return 0;
}

/* "-?digits(.digits)?", the only decimal syntax the API accepts. */
static int decimal_syntax_ok(const char *s, size_t n)
{
    size_t i = 0, int_digits = 0, frac_digits = 0;
    if (n == 0 || n > 40)
        return 0;
    if (s[0] == '-')
        i++;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++, int_digits++;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++, frac_digits++;
        if (frac_digits == 0)
            return 0;
    }
    return i == n && int_digits > 0;
}

/* A decimal string field: syntax, then exactness at the instrument's
 * precision, then a whole number of steps (tick or lot). */
static int decimal_field(json_t *v, const char *name, int decimals, int64_t step, int64_t *out,
                         gw_error *err, const char *invalid_code, const char *off_code)
{
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    size_t n = s ? json_string_length(v) : 0;
    if (!s || !decimal_syntax_ok(s, n))
        return fail(err, invalid_code, "%s must be a decimal string such as \"1.25\"", name);
    if (arb_dec_parse(s, n, decimals, out) != ARB_OK) {
        /* The syntax is fine: either a significant digit lies beyond the
         * instrument's precision, or the value overflows. */
        const char *dot = memchr(s, '.', n);
        size_t sig = dot ? n - (size_t)(dot - s) - 1 : 0;
        while (sig > 0 && dot[sig] == '0')
            sig--;
        if ((int)sig > decimals)
            return fail(err, off_code,
                        "%s '%.*s' has more decimals than the instrument allows (%d)", name, (int)n,
                        s, decimals);
        return fail(err, invalid_code, "%s '%.*s' is out of range", name, (int)n, s);
    }
    if (*out > 0 && *out % step != 0) {
        char stepbuf[48];
        return fail(err, off_code, "%s '%.*s' is not a multiple of %s", name, (int)n, s,
                    gw_dec(stepbuf, step, decimals));
    }
    return 0;
}

static int enum_field(json_t *v, const char *name, const char *const *names, const uint8_t *values,
                      size_t count, uint8_t *out, gw_error *err, const char *code)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        for (size_t i = 0; i < count; i++)
            if (!strcmp(s, names[i])) {
                *out = values[i];
                return 0;
            }
    }
    char allowed[96] = "";
    for (size_t i = 0; i < count; i++) {
        strncat(allowed, i ? ", " : "", sizeof allowed - strlen(allowed) - 1);
        strncat(allowed, names[i], sizeof allowed - strlen(allowed) - 1);
    }
    return fail(err, code, "%s must be one of: %s", name, allowed);
}

/* The fields a body may have, in the order of enum field below. */
static const char *const known_fields[] = {
    "venue", "symbol", "side", "type", "price", "qty", "tif", "client_order_id", "post_only"};
enum field { F_VENUE, F_SYMBOL, F_SIDE, F_TYPE, F_PRICE, F_QTY, F_TIF, F_CLIENT_ID, F_POST_ONLY };
#define N_FIELDS (sizeof known_fields / sizeof *known_fields)
_Static_assert(N_FIELDS == F_POST_ONLY + 1, "known_fields and enum field disagree");

static int validate(json_t *root, const arb_instrument_table *instruments, gw_order_request *out,
                    gw_error *err)
{
    if (!json_is_object(root))
        return fail(err, "body_not_object", "the body must be a JSON object");
    /* One pass over the members both rejects unknown fields (the first in
     * the body's order, as before any field is checked) and picks out the
     * known ones, so no field is looked up in the object's hash table
     * again. Keys are unique: the parser rejects duplicates. */
    json_t *field[N_FIELDS] = {0};
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val)
    {
        size_t i = 0;
        while (i < N_FIELDS && strcmp(key, known_fields[i]))
            i++;
        if (i == N_FIELDS)
            return fail(err, "unknown_field", "unknown field '%.64s'", key);
        field[i] = val;
    }

    json_t *venue = field[F_VENUE];
    json_t *symbol = field[F_SYMBOL];
    if (!venue)
        return fail(err, "missing_venue", "venue is required");
    if (!json_is_string(venue) || json_string_length(venue) == 0 ||
        json_string_length(venue) > ARB_VENUE_LEN)
        return fail(err, "invalid_venue", "venue must be a string of 1 to %u characters",
                    ARB_VENUE_LEN);
    if (!symbol)
        return fail(err, "missing_symbol", "symbol is required");
    if (!json_is_string(symbol) || json_string_length(symbol) == 0 ||
        json_string_length(symbol) > ARB_SYMBOL_LEN)
        return fail(err, "invalid_symbol", "symbol must be a string of 1 to %u characters",
                    ARB_SYMBOL_LEN);
    const arb_instrument *in =
        arb_instrument_find(instruments, json_string_value(venue), json_string_value(symbol));
    if (!in)
        return fail(err, "unknown_instrument", "no instrument %s:%s", json_string_value(venue),
                    json_string_value(symbol));
    out->instrument = in;

    static const char *const side_names[] = {"buy", "sell"};
    static const uint8_t side_values[] = {ARB_SIDE_BUY, ARB_SIDE_SELL};
    json_t *side = field[F_SIDE];
    if (!side)
        return fail(err, "missing_side", "side is required");
    if (enum_field(side, "side", side_names, side_values, 2, &out->side, err, "invalid_side"))
        return -1;

    static const char *const type_names[] = {"limit", "market"};
    static const uint8_t type_values[] = {ARB_ORD_LIMIT, ARB_ORD_MARKET};
    json_t *type = field[F_TYPE];
    out->type = ARB_ORD_LIMIT;
    if (type &&
        enum_field(type, "type", type_names, type_values, 2, &out->type, err, "invalid_type"))
        return -1;

    static const char *const tif_names[] = {"gtc", "ioc", "fok"};
    static const uint8_t tif_values[] = {ARB_TIF_GTC, ARB_TIF_IOC, ARB_TIF_FOK};
    json_t *tif = field[F_TIF];
    out->tif = out->type == ARB_ORD_MARKET ? ARB_TIF_IOC : ARB_TIF_GTC;
    if (tif && enum_field(tif, "tif", tif_names, tif_values, 3, &out->tif, err, "invalid_tif"))
        return -1;
    if (out->type == ARB_ORD_MARKET && out->tif == ARB_TIF_GTC)
        return fail(err, "tif_not_allowed", "a market order cannot rest: use ioc or fok");

    json_t *price = field[F_PRICE];
    out->price = 0;
    /* A market order's price is its protection price: the matcher takes
     * liquidity up to it and no further, so it is required too. */
    if (!price)
        return fail(err, "missing_price",
                    out->type == ARB_ORD_LIMIT
                        ? "price is required for a limit order"
                        : "price (the worst price to trade at) is required for a market order");
    if (price) {
        if (decimal_field(price, "price", in->price_decimals, in->tick, &out->price, err,
                          "invalid_price", "price_off_tick"))
            return -1;
        if (out->price <= 0)
            return fail(err, "price_not_positive", "price must be greater than zero");
    }

    json_t *qty = field[F_QTY];
    if (!qty)
        return fail(err, "missing_qty", "qty is required");
    if (decimal_field(qty, "qty", in->qty_decimals, in->lot, &out->qty, err, "invalid_qty",
                      "qty_off_lot"))
        return -1;
    if (out->qty <= 0)
        return fail(err, "qty_not_positive", "qty must be greater than zero");
    char lim[48];
    if (out->qty < in->min_qty) {
        return fail(err, "qty_below_min", "qty is below the minimum of %s",
                    gw_dec(lim, in->min_qty, in->qty_decimals));
    }
    if (out->qty > in->max_qty) {
        return fail(err, "qty_above_max", "qty is above the maximum of %s",
                    gw_dec(lim, in->max_qty, in->qty_decimals));
    }

    json_t *cid = field[F_CLIENT_ID];
    out->client_order_id[0] = 0;
    if (cid) {
        if (!json_is_string(cid) ||
            !gw_client_id_valid(json_string_value(cid), json_string_length(cid)))
            return fail(err, "invalid_client_order_id",
                        "client_order_id must be 1 to %d characters of A-Z a-z 0-9 . _ : -",
                        GW_CLIENT_ID_MAX);
        memcpy(out->client_order_id, json_string_value(cid), json_string_length(cid) + 1);
    }

    json_t *post_only = field[F_POST_ONLY];
    out->flags = 0;
    if (post_only) {
        if (!json_is_boolean(post_only))
            return fail(err, "invalid_post_only", "post_only must be true or false");
        if (json_is_true(post_only)) {
            if (out->type != ARB_ORD_LIMIT || out->tif != ARB_TIF_GTC)
                return fail(err, "post_only_not_allowed",
                            "post_only applies to limit gtc orders only");
            out->flags |= ARB_ORDF_POST_ONLY;
        }
    }
    return 0;
}

int gw_order_parse(const char *body, size_t len, const arb_instrument_table *instruments,
                   gw_order_request *out, gw_error *err)
{
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    /* Duplicate keys are ambiguous (which price wins?), so they are errors. */
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return fail(err, "invalid_json", "the body is not valid JSON: %.120s (offset %d)",
                    jerr.text, jerr.position);
    int rc = validate(root, instruments, out, err);
    json_decref(root);
    return rc;
}
