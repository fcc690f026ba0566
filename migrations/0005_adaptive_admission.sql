-- Adaptive admission (SPEC §4): instead of a fixed admit_per_second, the
-- waiting room's inflow follows the health of the hold path. See
-- src/adaptive.rs for the controller; these are its per-sale settings.
ALTER TABLE sales
    -- 'fixed': admit_per_second as configured. 'adaptive': admit_per_second
    -- is the starting rate, then the controller moves it.
    ADD COLUMN admission_mode text NOT NULL DEFAULT 'fixed' CHECK (admission_mode IN ('fixed', 'adaptive')),
    -- Optional upper bound of the adaptive rate (NULL: only max_active bounds it).
    ADD COLUMN admit_ceiling integer CHECK (admit_ceiling > 0),
    -- The hold path counts as healthy while its p99 stays under this.
    ADD COLUMN hold_p99_target_ms integer NOT NULL DEFAULT 50 CHECK (hold_p99_target_ms > 0);
