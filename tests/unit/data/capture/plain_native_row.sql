-- source: public.orders
CREATE TRIGGER herald_capture_insert AFTER INSERT ON "public"."orders" FOR EACH ROW EXECUTE FUNCTION herald.capture_native('public.orders');
CREATE TRIGGER herald_capture_update AFTER UPDATE ON "public"."orders" FOR EACH ROW EXECUTE FUNCTION herald.capture_native('public.orders');
CREATE TRIGGER herald_capture_delete AFTER DELETE ON "public"."orders" FOR EACH ROW EXECUTE FUNCTION herald.capture_native('public.orders');
DROP TRIGGER IF EXISTS herald_capture_insert ON "public"."orders";
DROP TRIGGER IF EXISTS herald_capture_update ON "public"."orders";
DROP TRIGGER IF EXISTS herald_capture_delete ON "public"."orders";
