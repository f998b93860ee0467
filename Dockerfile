# The closeout image: Airflow's official image, the project's locked dependencies (uv.lock, installed at
# build time, never at container start) and CJK fonts. docker-compose.yaml builds it.
FROM python:3.11-slim AS requirements
RUN pip install --no-cache-dir uv==0.13.8
COPY pyproject.toml uv.lock /src/
RUN cd /src && uv export --frozen --no-dev --no-emit-project --no-hashes -o /requirements.txt

# Keep in step with apache-airflow's pin in pyproject.toml and with requires-python (tests/integration/test_compose.py checks).
FROM apache/airflow:3.3.2-python3.11
USER root
# Noto CJK: bulletins, their PDF and charts, logs and exported pages show 衢州 and the county names instead of
# empty boxes; Pango and HarfBuzz's subsetter for WeasyPrint (the bulletin's PDF).
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-noto-cjk libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
USER airflow
COPY --from=requirements /requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir -r /tmp/requirements.txt
COPY --chown=airflow:root . /opt/closeout
# Editable, so the package finds include/ beside it exactly as in a checkout.
RUN pip install --no-cache-dir --no-deps -e /opt/closeout
WORKDIR /opt/closeout
