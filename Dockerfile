# egov-index image: the official Airflow 3.3.2 image + our pinned requirements + the domain package.
# Build: docker compose build   (see README "Deployment with docker-compose")
FROM apache/airflow:3.3.2-python3.11

USER airflow
COPY --chown=airflow:root requirements.txt /opt/egov-index/requirements.txt
RUN pip install --no-cache-dir -r /opt/egov-index/requirements.txt

# The import rule: egov_index lives in include/egov_index; include/ is on PYTHONPATH.
COPY --chown=airflow:root include/ /opt/airflow/include/
COPY --chown=airflow:root expectations/ /opt/airflow/expectations/
COPY --chown=airflow:root dags/ /opt/airflow/dags/
COPY --chown=airflow:root plugins/ /opt/airflow/plugins/
ENV PYTHONPATH=/opt/airflow/include \
    EGOV_EXPECTATIONS_DIR=/opt/airflow/expectations \
    EGOV_DATA_ROOT=/opt/airflow/data \
    GX_ANALYTICS_ENABLED=False
# Bytecode of the project's sources at build time, so that a container running the image as built does
# not compile egov_index at every DAG parse and task start (see the Makefile's bytecode target). The
# development compose file bind-mounts ./include, ./dags and ./plugins over these: there `make bytecode`
# on the host provides the .pyc files
RUN python -m compileall -q /opt/airflow/include /opt/airflow/dags /opt/airflow/plugins
